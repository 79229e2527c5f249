; Definitions and imports of Kotlin (see python-tags.scm for the capture names).
; The Kotlin grammar names no fields: a declaration's name is its first identifier child.
; @scope names the class or object a method belongs to; @package names the file's package.

(package_header (identifier) @package)

(class_declaration (type_identifier) @name) @definition.class

(object_declaration (type_identifier) @name) @definition.class

(class_declaration
  (type_identifier) @scope
  (class_body (function_declaration (simple_identifier) @name) @definition.method))

(object_declaration
  (type_identifier) @scope
  (class_body (function_declaration (simple_identifier) @name) @definition.method))

(function_declaration (simple_identifier) @name) @definition.function

(type_alias (type_identifier) @name) @definition.type

(source_file
  (property_declaration (variable_declaration (simple_identifier) @name)) @definition.constant)

(import_header
  (identifier) @import.source
  (import_alias (type_identifier) @import.alias)?) @import
