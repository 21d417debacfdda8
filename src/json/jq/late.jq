# lockrun's jq definitions placed after jaq's standard library; each replaces jaq's
# definition of the same name and arity, if any. Written for lockrun from the
# jq 1.7.1 manual and jq's observable behaviour.

def flatten($depth):
  if $depth < 0 then error("flatten depth must not be negative")
  else reduce .[] as $x ([];
    if ($x | type) == "array" and $depth != 0 then . + ($x | flatten($depth - 1))
    else . + [$x] end)
  end;

def nth($n; g):
  if $n < 0 then error("nth doesn't support negative indices")
  else first(skip($n; g)) end;

def leaf_paths: paths(scalars);

# The parts of the input that f's paths select, at the same places.
def pick(f): . as $whole | reduce path(f) as $p (null; setpath($p; $whole | getpath($p)));

# Streaming form: [path, leaf] for each leaf (scalars and empty containers), and
# [path of the last child] when a container ends.
def tostream:
  def events($at):
    if (type == "array" or type == "object") and length > 0 then
      [path(.[])[0]] as $keys
      | ($keys[] as $k | .[$k] | events($at + [$k])), [$at + [$keys[-1]]]
    else [$at, .] end;
  events([]);

def fromstream(events):
  foreach events as $ev ([null, false];
    (if .[1] then [null, false] else . end)
    | if ($ev | length) == 2 then
        if ($ev[0] | length) == 0 then [$ev[1], true]
        else [(.[0] | setpath($ev[0]; $ev[1])), false] end
      else [.[0], ($ev[0] | length) == 1] end;
    if .[1] then .[0] else empty end);

def truncate_stream(events):
  . as $depth | null | events
  | select((.[0] | length) > $depth) | .[0] |= .[$depth:];

# SQL-style helpers.
def IN(s): . as $x | isempty(first(s | select(. == $x))) | not;
def IN(src; s): . as $in | isempty(first(src as $x | $in | s | select(. == $x))) | not;
def INDEX(rows; key): reduce rows as $row ({}; .[$row | key | tostring] = $row);
def INDEX(key): INDEX(.[]; key);
def JOIN($index; key): [.[] | [., $index[key]]];
def JOIN($index; rows; key): rows | [., $index[key]];
def JOIN($index; rows; key; f): rows | [., $index[key]] | f;

def ascii: [.] | implode;

# update reads one document: there is never another input.
def input: error("No more inputs");
def inputs: empty;
def input_filename: $__lr_file;

def @csv: _lr_csv;
def @tsv: _lr_tsv;
def @base32: _lr_base32;
def @base32d: _lr_base32d;

# The date functions with jq's checks and words for what they cannot take.
def _lr_broken_down: type == "array" and (.[0:8] | all(type == "number"));
def mktime:
  if type != "array" or length < 6 then error("mktime requires array of 6 numbers")
  elif _lr_broken_down | not then error("mktime requires parsed datetime inputs")
  else _jaq_mktime end;
def strftime($format):
  if type != "number" and (_lr_broken_down | not)
  then error("strftime/1 requires parsed datetime inputs")
  elif ($format | type) != "string" then error("strftime/1 requires a string format")
  else _jaq_strftime($format) end;
def strflocaltime($format):
  if type != "number" and (_lr_broken_down | not)
  then error("strflocaltime/1 requires parsed datetime inputs")
  elif ($format | type) != "string" then error("strflocaltime/1 requires a string format")
  else _jaq_strflocaltime($format) end;

def have_literal_numbers: true;
def have_decnum: false;
