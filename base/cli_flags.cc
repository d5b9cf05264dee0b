#include "base/cli_flags.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ropewire::base {

void CliFlags::Add(const std::string& name, std::string* target, const std::string& help) {
  flags_.push_back({name, Kind::kString, target, help, "\"" + *target + "\""});
}
void CliFlags::Add(const std::string& name, int* target, const std::string& help) {
  flags_.push_back({name, Kind::kInt, target, help, std::to_string(*target)});
}
void CliFlags::Add(const std::string& name, int64_t* target, const std::string& help) {
  flags_.push_back({name, Kind::kInt64, target, help, std::to_string(*target)});
}
void CliFlags::Add(const std::string& name, double* target, const std::string& help) {
  flags_.push_back({name, Kind::kDouble, target, help, absl::StrCat(*target)});
}
void CliFlags::Add(const std::string& name, bool* target, const std::string& help) {
  flags_.push_back({name, Kind::kBool, target, help, *target ? "true" : "false"});
}

const CliFlags::Flag* CliFlags::Find(const std::string& name) const {
  for (const auto& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

absl::Status CliFlags::Assign(const Flag& flag, const std::string& value) const {
  bool ok = true;
  switch (flag.kind) {
    case Kind::kString: *static_cast<std::string*>(flag.target) = value; break;
    case Kind::kInt: ok = absl::SimpleAtoi(value, static_cast<int*>(flag.target)); break;
    case Kind::kInt64: ok = absl::SimpleAtoi(value, static_cast<int64_t*>(flag.target)); break;
    case Kind::kDouble: ok = absl::SimpleAtod(value, static_cast<double*>(flag.target)); break;
    case Kind::kBool: ok = absl::SimpleAtob(value, static_cast<bool*>(flag.target)); break;
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag.name, ": invalid value \"", value, "\""));
  }
  return absl::OkStatus();
}

absl::Status CliFlags::Parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (word.rfind("--", 0) != 0 || word == "--") {
      positional_.push_back(word);
      continue;
    }
    std::string name = word.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name == "help") {
      help_requested_ = true;
      continue;
    }
    const Flag* flag = Find(name);
    if (flag == nullptr && name.rfind("no-", 0) == 0 && !has_value) {
      const Flag* negated = Find(name.substr(3));
      if (negated != nullptr && negated->kind == Kind::kBool) {
        *static_cast<bool*>(negated->target) = false;
        continue;
      }
    }
    if (flag == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    if (flag->kind == Kind::kBool && !has_value) {
      *static_cast<bool*>(flag->target) = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc)
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      value = argv[++i];
    }
    if (absl::Status s = Assign(*flag, value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string CliFlags::Help() const {
  std::string text = usage_ + "\n\nflags:\n";
  for (const auto& flag : flags_) {
    absl::StrAppend(&text, "  --", flag.name, "  ", flag.help, " (default ", flag.default_text,
                    ")\n");
  }
  return text;
}

}  // namespace ropewire::base
