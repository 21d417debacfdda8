# lockrun's jq definitions that jaq's standard library itself relies on: they are
# placed before jaq-std's definitions and replace the ones of the same name there.
# Written for lockrun from the jq 1.7.1 manual and jq's observable behaviour.

def null: [][0];
def nan: _lr_nan;
def infinite: _lr_infinite;

# null counts as "", booleans and numbers as their JSON text (jq 1.7.1).
def join($sep):
  reduce .[] as $item (null;
    (if . == null then "" else . + $sep end)
    + ($item | type as $t
       | if $t == "boolean" or $t == "number" then tojson
         elif . == null then ""
         else . end))
  // "";

# Every path is deleted from the input as it was (see the native delpaths).
def del(f): delpaths([path(f)]);

# Keys from key, Key, name or Name; values from value or Value (jq 1.7.1).
def from_entries:
  reduce .[] as $e ({};
    . + { ($e | if type == "object" then .key // .Key // .name // .Name else . end):
          ($e | if type == "object" and has("value") then .value else .Value end) });
def with_entries(f): to_entries | map(f) | from_entries;
