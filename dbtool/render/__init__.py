"""Everything dbtool prints: one module per command family. The core never prints; the CLI calls these.
"""
