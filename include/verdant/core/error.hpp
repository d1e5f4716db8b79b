#pragma once
// One error type for every module: the message is the single line a user sees.
#include <stdexcept>
#include <string>

namespace verdant {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad command-line usage (unknown flag, nonsensical value): exit code 2 instead of 1.
class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace verdant
