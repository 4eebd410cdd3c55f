"""The interactive console: prompt_toolkit in front, a `Session` behind."""
