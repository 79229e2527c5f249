; Definitions (from call-initialised constants on), imports and exports shared by
; JavaScript and TypeScript: included by javascript-tags.scm and typescript-tags.scm with
; `; include: ecma-common`, in place, so pattern order is as if written there.

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

; --- members assigned at the top level -------------------------------------------------
; `Name.member = function / arrow` (a namespace object built up statement by statement)
; and `Name.prototype.member = function` (a pre-class method) define `member` of `Name`:
; @scope names the owner (the tag's parent). `exports` / `module` are CommonJS (above).

(program
  (expression_statement
    (assignment_expression
      left: (member_expression
        object: (identifier) @scope
        property: (property_identifier) @name)
      right: [(function_expression) (arrow_function)] @definition.method))
  (#not-match? @scope "^(exports|module)$"))

(program
  (expression_statement
    (assignment_expression
      left: (member_expression
        object: (member_expression
          object: (identifier) @scope
          property: (property_identifier) @_prototype)
        property: (property_identifier) @name)
      right: [(function_expression) (arrow_function)] @definition.method))
  (#eq? @_prototype "prototype"))

; --- imports ----------------------------------------------------------------------------
; @import.default binds the module's default export (`import X from`; for CommonJS,
; `const X = require(...)` binds `module.exports`, which is what a default import of a
; CommonJS module gets too); @import.alias alone binds the whole module (`* as ns`).

(import_statement
  (import_clause (named_imports (import_specifier name: [(identifier) "default"] @import.name alias: (identifier)? @import.alias)))
  source: (string (string_fragment) @import.source)) @import

(import_statement
  (import_clause (identifier) @import.default)
  source: (string (string_fragment) @import.source)) @import

(import_statement
  (import_clause (namespace_import (identifier) @import.alias))
  source: (string (string_fragment) @import.source)) @import

(import_statement
  source: (string (string_fragment) @import.source)) @import

; Re-exports: `export { a as b } from` imports `a` and binds `b`; `export * from` is a
; star import (name `*`); `export * as ns from` binds the whole module. (JavaScript's
; grammar has `default` as a keyword in specifiers, TypeScript's as an identifier.)

(export_statement
  (export_clause (export_specifier name: [(identifier) "default"] @import.name alias: [(identifier) "default"]? @import.alias))
  source: (string (string_fragment) @import.source)) @import

(export_statement
  "*" @import.name
  source: (string (string_fragment) @import.source)) @import

(export_statement
  (namespace_export (identifier) @import.alias)
  source: (string (string_fragment) @import.source)) @import

(export_statement
  source: (string (string_fragment) @import.source)) @import

; CommonJS: `const X = require("m")` (default-like: X is `module.exports`),
; `const { a, b: c, d = 1 } = require("m")` (named, `c` an alias) and
; `const c = require("m").a` (named `a`, alias `c`).

(variable_declarator
  name: (identifier) @import.default
  value: (call_expression
    function: (identifier) @_require
    arguments: (arguments . (string (string_fragment) @import.source)))
  (#eq? @_require "require")) @import

(variable_declarator
  name: (object_pattern
    [(shorthand_property_identifier_pattern) @import.name
     (pair_pattern key: (property_identifier) @import.name value: (identifier) @import.alias)
     (object_assignment_pattern left: (shorthand_property_identifier_pattern) @import.name)])
  value: (call_expression
    function: (identifier) @_require
    arguments: (arguments . (string (string_fragment) @import.source)))
  (#eq? @_require "require")) @import

(variable_declarator
  name: (identifier) @import.alias
  value: (member_expression
    object: (call_expression
      function: (identifier) @_require
      arguments: (arguments . (string (string_fragment) @import.source)))
    property: (property_identifier) @import.name)
  (#eq? @_require "require")) @import

; Any other `require("m")` (a bare one, or one inside an expression) binds nothing known.
((call_expression
   function: (identifier) @_require
   arguments: (arguments . (string (string_fragment) @import.source)))
 (#eq? @_require "require")) @import

; --- exports ----------------------------------------------------------------------------
; Only exports that rename are kept (an export under its own name is found by that name):
; @export.default is the local name of the file's default export (`export default Name`,
; CommonJS `module.exports = Name`); @export.name is the name under which the local
; definition @export.local is exported (`export { a as b }`, `exports.b = a`,
; `module.exports = { b: a }`).

(export_statement
  "default"
  declaration: [(class_declaration name: (_) @export.default)
                (function_declaration name: (identifier) @export.default)
                (generator_function_declaration name: (identifier) @export.default)]) @export

(export_statement
  "default"
  value: [(identifier) @export.default
          (class name: (_) @export.default)
          (function_expression name: (identifier) @export.default)]) @export

(export_statement
  (export_clause (export_specifier name: (identifier) @export.local alias: [(identifier) "default"] @export.name))
  !source) @export

(expression_statement
  (assignment_expression
    left: (member_expression object: (identifier) @_module property: (property_identifier) @_exports)
    right: [(identifier) @export.default
            (class name: (_) @export.default)
            (function_expression name: (identifier) @export.default)])
  (#eq? @_module "module")
  (#eq? @_exports "exports")) @export

(expression_statement
  (assignment_expression
    left: (member_expression object: (identifier) @_module property: (property_identifier) @_exports)
    right: (object (pair key: (property_identifier) @export.name value: (identifier) @export.local)))
  (#eq? @_module "module")
  (#eq? @_exports "exports")) @export

(expression_statement
  (assignment_expression
    left: (member_expression
      object: [(identifier) @_exports (member_expression property: (property_identifier) @_exports)]
      property: (property_identifier) @export.name)
    right: (identifier) @export.local)
  (#eq? @_exports "exports")) @export
