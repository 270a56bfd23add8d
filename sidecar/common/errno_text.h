#pragma once

#include <string>

namespace credsync {

// The text of an errno value ("No such file or directory"), safe from any
// thread: std::strerror may share one buffer between threads, and credsync
// reads files and starts processes on several.
std::string errnoText(int error);

}  // namespace credsync
