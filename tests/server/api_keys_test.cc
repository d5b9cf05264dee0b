// API key files and the Bearer check, without a server.
#include "server/api_keys.h"

#include <unistd.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ropewire::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<std::string> Check(const ApiKeys& keys, const std::string& header) {
  const absl::string_view value = header;
  return keys.Authenticate(&value);
}

TEST(ApiKeys, NamedAndUnnamedKeys) {
  auto keys = ApiKeys::Parse("# team keys\nalice:sk-alice-1\n\n  sk-unnamed-2  \nbob:sk-bob:3\n",
                             "keys.txt");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 3u);
  EXPECT_EQ(*Check(*keys, "Bearer sk-alice-1"), "alice");
  EXPECT_EQ(*Check(*keys, "Bearer sk-unnamed-2"), "key2");
  // The first colon splits: bob's key holds one.
  EXPECT_EQ(*Check(*keys, "Bearer sk-bob:3"), "bob");
  // The scheme is case-insensitive (RFC 7235); surrounding spaces do not matter.
  EXPECT_EQ(*Check(*keys, "  bearer   sk-alice-1 "), "alice");
}

TEST(ApiKeys, RefusalsNeverEchoWhatWasSent) {
  auto keys = ApiKeys::Parse("alice:sk-alice-1\n", "keys.txt");
  ASSERT_TRUE(keys.ok());
  for (const std::string& header :
       {std::string("Bearer sk-alice-2"), std::string("Bearer sk-alice-1x"), std::string("Bearer "),
        std::string("Basic c2stYWxpY2UtMQ=="), std::string("sk-alice-1")}) {
    auto refused = Check(*keys, header);
    ASSERT_FALSE(refused.ok()) << header;
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(refused.status().message(), Not(HasSubstr("sk-alice")));
    EXPECT_THAT(refused.status().message(), Not(HasSubstr("c2st")));
  }
  auto missing = keys->Authenticate(nullptr);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(missing.status().message(), HasSubstr("authorization: Bearer <key>"));
}

TEST(ApiKeys, BadFilesAreErrorsNamingTheLineNotTheKey) {
  struct Case {
    std::string text, expected;
  };
  for (const Case& c : {Case{"", "holds no keys"}, Case{"# only a comment\n", "holds no keys"},
                        Case{"ok:sk-1\nsk with space\n", "keys.txt:2: a key must be"},
                        Case{"bad name:sk-secret-9\n", "keys.txt:1: a key name must be"},
                        Case{"a:sk-1\na:sk-2\n", "keys.txt:2: the key name \"a\" is used twice"},
                        Case{"a:\n", "keys.txt:1: a key must be"}}) {
    auto keys = ApiKeys::Parse(c.text, "keys.txt");
    ASSERT_FALSE(keys.ok()) << c.text;
    EXPECT_THAT(keys.status().message(), HasSubstr(c.expected));
    EXPECT_THAT(keys.status().message(), Not(HasSubstr("sk-")));
  }
}

TEST(Authenticator, ReloadReplacesKeysAndKeepsThemOnAnError) {
  const std::string path =
      ::testing::TempDir() + "/ropewire_keys_test." + std::to_string(getpid()) + ".txt";
  std::ofstream(path) << "first:sk-first\n";
  auto authenticator = Authenticator::Create(path);
  ASSERT_TRUE(authenticator.ok()) << authenticator.status();
  const absl::string_view first = "Bearer sk-first", second = "Bearer sk-second";
  EXPECT_TRUE((*authenticator)->Authenticate(&first).ok());
  std::ofstream(path) << "second:sk-second\n";
  ASSERT_TRUE((*authenticator)->Reload().ok());
  EXPECT_FALSE((*authenticator)->Authenticate(&first).ok());
  EXPECT_EQ(*(*authenticator)->Authenticate(&second), "second");
  std::ofstream(path) << "not a key file\n";
  EXPECT_FALSE((*authenticator)->Reload().ok());
  EXPECT_EQ(*(*authenticator)->Authenticate(&second), "second");

  auto open = Authenticator::Create("");
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE((*open)->enabled());
  EXPECT_EQ(*(*open)->Authenticate(nullptr), "");
  EXPECT_FALSE(Authenticator::Create(path + ".missing").ok());
}

}  // namespace
}  // namespace ropewire::server
