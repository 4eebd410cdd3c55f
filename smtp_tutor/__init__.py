"""smtp-tutor: type raw SMTP like telnet, with the explanations, TLS and base64 telnet lacks."""

__version__ = "0.1.0"
