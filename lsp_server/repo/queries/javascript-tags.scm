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
    (variable_declarator name: (identifier) @name value: [(number) (string) (object) (array) (template_string) (new_expression)])) @definition.constant)

(program
  (export_statement
    declaration: (lexical_declaration
      (variable_declarator name: (identifier) @name value: [(number) (string) (object) (array) (template_string) (new_expression)])) @definition.constant))

; include: ecma-common
