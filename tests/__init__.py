"""rmbench test suite; subfolders mirror the package."""
