"""The one writer of generated files: the banner, the YAML dumper (format) and the bundle's replacement on disk."""
