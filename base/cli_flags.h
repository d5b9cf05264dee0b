// A small command-line parser for ropewire's binaries: dashed long options (--max-tokens 8 or
// --max-tokens=8), typed values, generated --help, and errors that name the flag.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ropewire::base {

class CliFlags {
 public:
  explicit CliFlags(std::string usage) : usage_(std::move(usage)) {}

  // Registers a flag bound to `target`, whose current value is the default.
  void Add(const std::string& name, std::string* target, const std::string& help);
  void Add(const std::string& name, int* target, const std::string& help);
  void Add(const std::string& name, int64_t* target, const std::string& help);
  void Add(const std::string& name, double* target, const std::string& help);
  void Add(const std::string& name, bool* target,
           const std::string& help);  // --x / --no-x / --x=false

  // Parses argv[1..]. Words that are not flags are collected as positional arguments.
  // `--help` sets help_requested() and returns OK.
  absl::Status Parse(int argc, char** argv);

  bool help_requested() const { return help_requested_; }
  const std::vector<std::string>& positional() const { return positional_; }
  std::string Help() const;

 private:
  enum class Kind { kString, kInt, kInt64, kDouble, kBool };
  struct Flag {
    std::string name;
    Kind kind;
    void* target;
    std::string help;
    std::string default_text;
  };
  const Flag* Find(const std::string& name) const;
  absl::Status Assign(const Flag& flag, const std::string& value) const;

  std::string usage_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

}  // namespace ropewire::base
