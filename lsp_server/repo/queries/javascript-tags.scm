; Definitions and imports of JavaScript (see python-tags.scm for the capture names).

(method_definition name: (property_identifier) @name) @definition.method

(function_declaration name: (identifier) @name) @definition.function

(generator_function_declaration name: (identifier) @name) @definition.function

(class_declaration name: (identifier) @name) @definition.class

(program
  (lexical_declaration
    (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @definition.function)

(program
  (export_statement
    declaration: (lexical_declaration
      (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @definition.function))

(program
  (lexical_declaration
    (variable_declarator name: (identifier) @name value: [(number) (string) (object) (array) (template_string) (call_expression) (new_expression)])) @definition.constant)

(program
  (export_statement
    declaration: (lexical_declaration
      (variable_declarator name: (identifier) @name value: [(number) (string) (object) (array) (template_string) (call_expression) (new_expression)])) @definition.constant))

(import_statement
  (import_clause (named_imports (import_specifier name: (identifier) @import.name alias: (identifier)? @import.alias)))
  source: (string (string_fragment) @import.source)) @import

(import_statement
  (import_clause (identifier) @import.alias)
  source: (string (string_fragment) @import.source)) @import

(import_statement
  (import_clause (namespace_import (identifier) @import.alias))
  source: (string (string_fragment) @import.source)) @import

(import_statement
  source: (string (string_fragment) @import.source)) @import

(export_statement
  source: (string (string_fragment) @import.source)) @import

((call_expression
   function: (identifier) @_require
   arguments: (arguments . (string (string_fragment) @import.source)))
 (#eq? @_require "require")) @import
