#pragma once

#include <cstddef>

#include "absl/strings/string_view.h"

namespace credsync {

// True if no object or array in `text` nests deeper than `max_depth`. Checked
// before handing untrusted JSON to the parser, so hostile nesting costs no
// recursion or memory. Exact for valid JSON; invalid JSON is refused by the
// parser afterwards anyway.
bool jsonDepthWithin(absl::string_view text, int max_depth);

// As jsonDepthWithin, and also false when `text` has more than `max_nodes`
// objects, arrays and commas (each comma starts another element or member):
// a parsed document costs up to ~80 bytes a node (an empty object), ~28
// times its text, so the node count bounds what parsing it may allocate.
bool jsonShapeWithin(absl::string_view text, int max_depth, size_t max_nodes);

}  // namespace credsync
