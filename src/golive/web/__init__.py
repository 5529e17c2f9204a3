"""The web UI: pages rendered on the server (Jinja2), in Chinese and English (Babel
catalogs), with a little JavaScript of our own (live logs) and forms that work
without it. See README.md."""
