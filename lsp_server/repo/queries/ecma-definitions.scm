; Definitions shared by JavaScript and TypeScript (included by javascript-tags.scm and
; typescript-tags.scm with `; include: ecma-definitions`, in place, so pattern order
; is as if written there).

; A constant initialised by a call, unless the call is a `require` (an import, below).

(program
  (lexical_declaration
    (variable_declarator name: (identifier) @name value: (call_expression function: (_) @_callee))) @definition.constant
  (#not-eq? @_callee "require"))

(program
  (export_statement
    declaration: (lexical_declaration
      (variable_declarator name: (identifier) @name value: (call_expression function: (_) @_callee))) @definition.constant)
  (#not-eq? @_callee "require"))

; --- CommonJS definitions -------------------------------------------------------------
; `exports.name = function / arrow / class` (also `module.exports.name = ...`) defines
; `name`; `module.exports = class Name {}` / `function Name() {}` defines `Name`.

(expression_statement
  (assignment_expression
    left: (member_expression
      object: [(identifier) @_exports (member_expression property: (property_identifier) @_exports)]
      property: (property_identifier) @name)
    right: [(function_expression) (arrow_function)] @definition.function)
  (#eq? @_exports "exports"))

(expression_statement
  (assignment_expression
    left: (member_expression
      object: [(identifier) @_exports (member_expression property: (property_identifier) @_exports)]
      property: (property_identifier) @name)
    right: (class) @definition.class)
  (#eq? @_exports "exports"))

(expression_statement
  (assignment_expression
    left: (member_expression object: (identifier) @_module property: (property_identifier) @_exports)
    right: (class name: (_) @name) @definition.class)
  (#eq? @_module "module")
  (#eq? @_exports "exports"))

(expression_statement
  (assignment_expression
    left: (member_expression object: (identifier) @_module property: (property_identifier) @_exports)
    right: (function_expression name: (identifier) @name) @definition.function)
  (#eq? @_module "module")
  (#eq? @_exports "exports"))

; --- imports ----------------------------------------------------------------------------
; @import.default binds the module's default export (`import X from`; for CommonJS,
; `const X = require(...)` binds `module.exports`, which is what a default import of a
; CommonJS module gets too); @import.alias alone binds the whole module (`* as ns`).
