"""The API's request and response schemas, one module per resource. Requests and
responses are separate classes; responses are read from plain data or ORM rows
(``from_attributes``) and are exactly what ``--json`` prints."""
