; Definitions and includes of C (see python-tags.scm for the capture names).

(function_definition
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
    (pointer_declarator declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))
  ]) @definition.function

(declaration
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
  ]) @definition.function

(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.class

(union_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.class

(enum_specifier name: (type_identifier) @name body: (enumerator_list)) @definition.type

(type_definition declarator: (type_identifier) @name) @definition.type

(preproc_def name: (identifier) @name) @definition.macro

(preproc_function_def name: (identifier) @name) @definition.macro

(preproc_include path: (string_literal (string_content) @import.source)) @import
