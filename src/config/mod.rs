//! Pipeline configuration: the YAML model, `((var))` syntax and validation.
