"""The eBPF programs (C) that ctop compiles with bcc at run time; shipped as package data."""
