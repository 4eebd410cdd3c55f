"""Guided lessons, one TOML file each; installed as the package data `smtp_tutor.lessons`."""
