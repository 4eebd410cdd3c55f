"""The sans-I/O protocol core: pure functions and classes, no sockets, no event loop, no UI.

Feed it bytes and lines; it tells you what they mean. Everything that talks to a network or
a terminal lives outside this package and is a thin layer over it (the h11 way).
"""
