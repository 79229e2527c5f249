; Definitions and imports of TypeScript and TSX (see python-tags.scm for the capture names).

(method_definition name: (property_identifier) @name) @definition.method

(method_signature name: (property_identifier) @name) @definition.method

(abstract_method_signature name: (property_identifier) @name) @definition.method

(function_declaration name: (identifier) @name) @definition.function

(function_signature name: (identifier) @name) @definition.function

(generator_function_declaration name: (identifier) @name) @definition.function

(class_declaration name: (type_identifier) @name) @definition.class

(abstract_class_declaration name: (type_identifier) @name) @definition.class

(interface_declaration name: (type_identifier) @name) @definition.type

(type_alias_declaration name: (type_identifier) @name) @definition.type

(enum_declaration name: (identifier) @name) @definition.type

(program
  (lexical_declaration
    (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @definition.function)

(program
  (export_statement
    declaration: (lexical_declaration
      (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @definition.function))

(program
  (lexical_declaration
    (variable_declarator name: (identifier) @name value: [(number) (string) (object) (array) (template_string) (new_expression) (as_expression)])) @definition.constant)

(program
  (export_statement
    declaration: (lexical_declaration
      (variable_declarator name: (identifier) @name value: [(number) (string) (object) (array) (template_string) (new_expression) (as_expression)])) @definition.constant))

; include: ecma-common

; TypeScript: `export = Name` is CommonJS's `module.exports = Name`;
; `export default abstract class Name`; `import X = require("m")` binds `module.exports`.

(export_statement "=" (identifier) @export.default) @export

(export_statement
  "default"
  declaration: (abstract_class_declaration name: (_) @export.default)) @export

(import_statement
  (import_require_clause (identifier) @import.default source: (string (string_fragment) @import.source))) @import
