; Definitions and imports of Go (see python-tags.scm for the capture names).
; @package names the file's package.

(package_clause (package_identifier) @package)

(function_declaration name: (identifier) @name) @definition.function

(method_declaration name: (field_identifier) @name) @definition.method

(type_declaration (type_spec name: (type_identifier) @name) @definition.type)

(type_declaration (type_alias name: (type_identifier) @name) @definition.type)

(source_file (const_declaration (const_spec name: (identifier) @name) @definition.constant))

(source_file (var_declaration (var_spec name: (identifier) @name) @definition.constant))

(import_spec
  name: (_)? @import.alias
  path: (interpreted_string_literal (interpreted_string_literal_content) @import.source)) @import
