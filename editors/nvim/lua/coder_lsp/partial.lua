--- Partial accept: how much of a suggestion "the next word" and "the next line" are.
---
--- The same rules as the Emacs package: a word is the blanks before it plus a run of word
--- characters (letters, digits, `_`) or a run of other non-blank characters; a suggestion
--- that starts a new line gives that line break with the new line's indentation first. A line
--- is the text up to the next line break; a suggestion that starts with a line break gives
--- the break and the line after it.
local M = {}

--- The start of `text` that "accept the next word" inserts.
--- @param text string
--- @return string
function M.next_word(text)
  local lead = text:match('^\n[ \t]*')
  if lead then
    return lead
  end
  local word = text:match('^[ \t]*[%w_]+') or text:match('^[ \t]*[^%w_%s]+')
  return word or text
end

--- The start of `text` that "accept the next line" inserts.
--- @param text string
--- @return string
function M.next_line(text)
  if text:sub(1, 1) == '\n' then
    local line = text:match('^\n[^\n]*')
    return line
  end
  return text:match('^[^\n]*')
end

return M
