; Definitions and includes of C++ (see python-tags.scm for the capture names).

(field_declaration_list
  (function_definition
    declarator: (function_declarator declarator: [(field_identifier) (identifier) (operator_name) (destructor_name)] @name)) @definition.method)

(field_declaration_list
  (field_declaration
    declarator: (function_declarator declarator: [(field_identifier) (identifier) (operator_name) (destructor_name)] @name)) @definition.method)

(function_definition
  declarator: [
    (function_declarator declarator: [(identifier) (qualified_identifier) (operator_name)] @name)
    (pointer_declarator declarator: (function_declarator declarator: [(identifier) (qualified_identifier)] @name))
    (reference_declarator (function_declarator declarator: [(identifier) (qualified_identifier)] @name))
  ]) @definition.function

(declaration
  declarator: [
    (function_declarator declarator: [(identifier) (qualified_identifier)] @name)
    (pointer_declarator declarator: (function_declarator declarator: [(identifier) (qualified_identifier)] @name))
  ]) @definition.function

(class_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.class

(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.class

(union_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.class

(enum_specifier name: (type_identifier) @name body: (enumerator_list)) @definition.type

(type_definition declarator: (type_identifier) @name) @definition.type

(alias_declaration name: (type_identifier) @name) @definition.type

(concept_definition name: (identifier) @name) @definition.type

(preproc_def name: (identifier) @name) @definition.macro

(preproc_function_def name: (identifier) @name) @definition.macro

(preproc_include path: (string_literal (string_content) @import.source)) @import
