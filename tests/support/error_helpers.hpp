#pragma once
// Shared by tests that check bad-input errors: the message must be one line.
#include <gtest/gtest.h>

#include <string>

#include "verdant/core/error.hpp"

namespace verdant::test_support {

// Runs f, expects a verdant::Error with a one-line message, and returns that message.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const verdant::Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  ADD_FAILURE() << "expected verdant::Error";
  return {};
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace verdant::test_support
