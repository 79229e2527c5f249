; Definitions and imports of Java (see python-tags.scm for the capture names).
; @package names the file's package.

(package_declaration [(scoped_identifier) (identifier)] @package)

(class_declaration name: (identifier) @name) @definition.class

(interface_declaration name: (identifier) @name) @definition.type

(enum_declaration name: (identifier) @name) @definition.type

(record_declaration name: (identifier) @name) @definition.class

(annotation_type_declaration name: (identifier) @name) @definition.type

(method_declaration name: (identifier) @name) @definition.method

(constructor_declaration name: (identifier) @name) @definition.method

(field_declaration
  (modifiers "static" "final")
  declarator: (variable_declarator name: (identifier) @name)) @definition.constant

(import_declaration [(scoped_identifier) (identifier)] @import.source (asterisk)? @import.name) @import
