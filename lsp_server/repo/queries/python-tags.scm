; Definitions and imports of Python, for coder-lsp's workspace index.
; Captures: @definition.<kind> on the whole definition, @name on its name;
; @import on an import statement with @import.source / @import.name / @import.alias.

(class_definition
  body: (block
    (function_definition name: (identifier) @name) @definition.method))

(class_definition
  body: (block
    (decorated_definition
      definition: (function_definition name: (identifier) @name) @definition.method)))

(function_definition name: (identifier) @name) @definition.function

(class_definition name: (identifier) @name) @definition.class

; Module-level assignments (newer grammars put them straight under the module, older
; ones inside an expression_statement).
(module (assignment left: (identifier) @name) @definition.constant)

(module
  (expression_statement
    (assignment left: (identifier) @name) @definition.constant))

(import_statement name: (dotted_name) @import.source) @import

(import_statement
  name: (aliased_import name: (dotted_name) @import.source alias: (identifier) @import.alias)) @import

(import_from_statement
  module_name: (_) @import.source
  name: (dotted_name) @import.name) @import

(import_from_statement
  module_name: (_) @import.source
  name: (aliased_import name: (dotted_name) @import.name alias: (identifier) @import.alias)) @import

(import_from_statement
  module_name: (_) @import.source
  (wildcard_import) @import.name) @import
