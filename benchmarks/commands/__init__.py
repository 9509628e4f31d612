"""The ``plm-nas`` commands: each module parses its options into settings and calls the library below."""
