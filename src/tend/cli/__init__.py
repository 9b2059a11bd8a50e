"""The ``tend`` command line: parse, call the API or a service, render with rich."""
