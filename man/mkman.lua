-- mkman.lua PAGE.lua SRCDIR VERSION OUT: writes a man page (roff, man(7)
-- macros) from a page description (man/*.lua) and the Markdown of docs/,
-- so the man pages say what the docs say and never drift from them.
--
-- The Markdown is the subset docs/ uses: # headings, paragraphs, indented
-- and fenced code blocks, `*`/`-`/`1.` lists with indented continuation
-- lines, pipe tables, `code`, **strong**, *emphasis* and [links](target).
-- Tables become tagged paragraphs (.TP), which fit any terminal width
-- (tbl(1) tables of long cells make troff warn that it cannot break lines).
local page_file, srcdir, version, out_file = ...
assert(out_file, "usage: lua5.4 mkman.lua PAGE.lua SRCDIR VERSION OUT")

local page = dofile(page_file)

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Text to roff: backslashes and hyphens escaped, no line may start a request.
local function esc(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  return s
end

local function guard(line)
  if line:match("^[.']") then return "\\&" .. line end
  return line
end

-- Inline Markdown to roff fonts, on text that is not escaped yet.
local function inline(s)
  local parts = {}
  local i = 1
  while i <= #s do
    local a, b, code = s:find("^`([^`]+)`", i)
    if a then
      parts[#parts + 1] = "\\fB" .. esc(code) .. "\\fR"
      i = b + 1
    else
      local c = s:sub(i, i)
      local _, lb, text = s:find("^%[([^%]]+)%]%([^)]*%)", i)
      local _, sb, strong = s:find("^%*%*(.-)%*%*", i)
      local _, eb, em = s:find("^%*([^%s*][^*]-)%*", i)
      if lb then
        parts[#parts + 1] = inline(text)
        i = lb + 1
      elseif sb then
        parts[#parts + 1] = "\\fB" .. inline(strong) .. "\\fR"
        i = sb + 1
      elseif eb then
        parts[#parts + 1] = "\\fI" .. inline(em) .. "\\fR"
        i = eb + 1
      elseif c == "\\" and s:sub(i + 1, i + 1):match("[|*_`%[%]\\]") then
        parts[#parts + 1] = esc(s:sub(i + 1, i + 1))
        i = i + 2
      else
        local j = s:find("[`%[*\\]", i + 1) or #s + 1
        parts[#parts + 1] = esc(s:sub(i, j - 1))
        i = j
      end
    end
  end
  return table.concat(parts)
end

-- Filled text: one roff line per source line, each guarded (a code span
-- may run over a line break).
local function text_lines(lines, out)
  local stripped = {}
  for i, l in ipairs(lines) do stripped[i] = l:gsub("^%s+", "") end
  for l in (inline(table.concat(stripped, "\n")) .. "\n"):gmatch("(.-)\n") do
    out[#out + 1] = guard(l)
  end
end

local function code_block(lines, out)
  out[#out + 1] = ".PP"
  out[#out + 1] = ".RS 4"
  out[#out + 1] = ".nf"
  for _, l in ipairs(lines) do out[#out + 1] = guard(esc(l)) end
  out[#out + 1] = ".fi"
  out[#out + 1] = ".RE"
end

local function cells(row)
  local t = {}
  row = row:gsub("^%s*|", ""):gsub("|%s*$", "")
  local cur, i = {}, 1
  while i <= #row do
    local c = row:sub(i, i)
    if c == "\\" and row:sub(i + 1, i + 1) == "|" then
      cur[#cur + 1] = "|"
      i = i + 2
    elseif c == "|" then
      t[#t + 1] = table.concat(cur):match("^%s*(.-)%s*$")
      cur = {}
      i = i + 1
    else
      cur[#cur + 1] = c
      i = i + 1
    end
  end
  t[#t + 1] = table.concat(cur):match("^%s*(.-)%s*$")
  return t
end

-- A table: each row a tagged paragraph, its first cell the tag; with more
-- than two columns the other cells are labelled by their headers.
local function table_block(rows, out)
  local head = cells(rows[1])
  for r = 3, #rows do
    local row = cells(rows[r])
    out[#out + 1] = ".TP"
    out[#out + 1] = guard(inline(row[1]))
    if #head == 2 then
      out[#out + 1] = guard(inline(row[2] or ""))
    else
      for c = 2, #head do
        if c > 2 then out[#out + 1] = ".br" end
        out[#out + 1] = guard(inline(head[c] .. ": " .. (row[c] or "")))
      end
    end
  end
end

-- Markdown lines to roff lines. Headings: level 2 becomes .SH (renamed or
-- dropped as the page says), deeper ones .SS; level 1 (the doc's title) is
-- left out: the page has its own NAME.
local function convert(md, out, opts)
  opts = opts or {}
  local lines = {}
  for l in (md .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = l end
  local i, dropping = 1, false
  local function blank(l) return l == nil or l:match("^%s*$") end
  while i <= #lines do
    local l = lines[i]
    local level, title = l:match("^(#+)%s+(.-)%s*$")
    if level then
      if #level == 2 then
        local name = opts.rename and opts.rename[title] or title
        dropping = opts.drop and opts.drop[title] or false
        if not dropping then out[#out + 1] = ".SH " .. esc((name:gsub("`", "")):upper()) end
      elseif #level > 2 and not dropping then
        out[#out + 1] = ".SS \"" .. inline(title):gsub('"', '\\(dq') .. "\""
      end
      i = i + 1
    elseif dropping or blank(l) then
      i = i + 1
    elseif l:match("^```") then
      local code = {}
      i = i + 1
      while lines[i] and not lines[i]:match("^```") do
        code[#code + 1] = lines[i]
        i = i + 1
      end
      code_block(code, out)
      i = i + 1
    elseif l:match("^    ") then
      local code = {}
      while lines[i] and (lines[i]:match("^    ") or (blank(lines[i]) and lines[i + 1]
          and lines[i + 1]:match("^    "))) do
        code[#code + 1] = lines[i]:sub(5)
        i = i + 1
      end
      code_block(code, out)
    elseif l:match("^%s*|") then
      local rows = {}
      while lines[i] and lines[i]:match("^%s*|") do
        rows[#rows + 1] = lines[i]
        i = i + 1
      end
      table_block(rows, out)
    elseif l:match("^[*-]%s") or l:match("^%d+%.%s") then
      -- A list: an item runs until the next item or a line not indented.
      while lines[i] and (lines[i]:match("^[*-]%s") or lines[i]:match("^%d+%.%s")) do
        local mark, first = lines[i]:match("^([*-])%s+(.*)$")
        if mark then
          out[#out + 1] = ".IP \\(bu 2"
        else
          mark, first = lines[i]:match("^(%d+%.)%s+(.*)$")
          out[#out + 1] = ".IP " .. mark .. " 4"
        end
        local item = { first }
        i = i + 1
        local sub = {}
        while lines[i] and (lines[i]:match("^  +%S") or (blank(lines[i]) and lines[i + 1]
            and lines[i + 1]:match("^  +%S"))) do
          sub[#sub + 1] = lines[i]
          i = i + 1
        end
        -- Continuation lines, then any nested blocks (a table, code).
        local j = 1
        while sub[j] and not blank(sub[j]) and not sub[j]:match("^%s*|") do
          item[#item + 1] = sub[j]
          j = j + 1
        end
        text_lines(item, out)
        if sub[j] then
          local rest = {}
          for k = j, #sub do rest[#rest + 1] = (sub[k]:gsub("^  ", "", 1)) end
          local nested = {}
          convert(table.concat(rest, "\n"), nested)
          out[#out + 1] = ".RS 2"
          for _, n in ipairs(nested) do out[#out + 1] = n end
          out[#out + 1] = ".RE"
        end
        while blank(lines[i]) and lines[i + 1] and (lines[i + 1]:match("^[*-]%s")
            or lines[i + 1]:match("^%d+%.%s")) do
          i = i + 1
        end
      end
    else
      local para = {}
      while lines[i] and not blank(lines[i]) and not lines[i]:match("^#")
          and not lines[i]:match("^```") and not lines[i]:match("^%s*|")
          and not lines[i]:match("^[*-]%s") do
        para[#para + 1] = lines[i]
        i = i + 1
      end
      out[#out + 1] = ".PP"
      text_lines(para, out)
    end
  end
  return out
end

local out = {
  ".\\\" Generated by man/mkman.lua from " .. table.concat(page.sources, " and ")
    .. ": edit those, not this file.",
  (".TH %s %s \"\" \"%s %s\" \"%s\""):format(esc(page.name:upper()), page.section, page.package,
    version, page.manual),
  ".nh", -- no hyphenation: option names and keys stay whole
  ".ad l",
  ".SH NAME",
  esc(page.name) .. " \\- " .. esc(page.summary),
}
for _, part in ipairs(page.parts) do
  if part.text then
    convert(part.text, out)
  else
    local md = read(srcdir .. "/" .. part.source)
    if part.from then
      -- Only what follows the first heading named `from`.
      local a = md:find("\n" .. part.from .. "\n", 1, true)
      md = assert(a, part.from .. " not in " .. part.source) and md:sub(a + 1)
    end
    if part["until"] then
      -- Only what comes before the first heading named `until`.
      local a = md:find("\n" .. part["until"] .. "\n", 1, true)
      md = assert(a, part["until"] .. " not in " .. part.source) and md:sub(1, a)
    end
    convert(md, out, part)
  end
end

local f = assert(io.open(out_file, "wb"))
f:write(table.concat(out, "\n"), "\n")
f:close()
