; Definitions and imports of Rust (see python-tags.scm for the capture names).
; A `mod name;` item without a body is an import of another file (@import.module).

(impl_item body: (declaration_list (function_item name: (identifier) @name) @definition.method))

(trait_item body: (declaration_list (function_signature_item name: (identifier) @name) @definition.method))

(trait_item body: (declaration_list (function_item name: (identifier) @name) @definition.method))

(function_item name: (identifier) @name) @definition.function

(struct_item name: (type_identifier) @name) @definition.class

(enum_item name: (type_identifier) @name) @definition.type

(union_item name: (type_identifier) @name) @definition.type

(trait_item name: (type_identifier) @name) @definition.type

(type_item name: (type_identifier) @name) @definition.type

(const_item name: (identifier) @name) @definition.constant

(static_item name: (identifier) @name) @definition.constant

(macro_definition name: (identifier) @name) @definition.macro

(mod_item name: (identifier) @import.module !body) @import

(use_declaration argument: (_) @import.source) @import
