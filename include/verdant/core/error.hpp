#pragma once
// One error type for every module: the message is the single line a user sees.
//
// Library messages name settings as the library does ("batch_size", "lr"). An error records
// the settings it mentions, so a front end can word them as its own options with
// worded_as() (the CLI: "--batch-size", "--lr").
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace verdant {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  Error(const std::string& message, std::vector<std::string> settings)
      : std::runtime_error(message), settings_(std::move(settings)) {}
  const std::vector<std::string>& settings() const { return settings_; }
  // The message with the first mention (a whole word) of each recorded setting replaced by
  // name_of(setting); an empty name leaves it as it is. Later mentions are plain words
  // ("model: unknown model 'x'").
  std::string worded_as(const std::function<std::string(const std::string&)>& name_of) const;

 private:
  std::vector<std::string> settings_;
};

// Bad command-line usage (unknown flag, nonsensical value): exit code 2 instead of 1.
class UsageError : public Error {
 public:
  using Error::Error;
};

// A setting with a value the library refuses, e.g. "batch_size must be positive, got 0".
class SettingError : public UsageError {
 public:
  SettingError(std::string setting, const std::string& message)
      : UsageError(message, {setting}), setting_(std::move(setting)) {}
  const std::string& setting() const { return setting_; }

 private:
  std::string setting_;
};

}  // namespace verdant
