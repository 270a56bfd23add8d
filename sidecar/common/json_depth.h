#pragma once

#include "absl/strings/string_view.h"

namespace credsync {

// True if no object or array in `text` nests deeper than `max_depth`. Checked
// before handing untrusted JSON to the parser, so hostile nesting costs no
// recursion or memory. Exact for valid JSON; invalid JSON is refused by the
// parser afterwards anyway.
bool jsonDepthWithin(absl::string_view text, int max_depth);

}  // namespace credsync
