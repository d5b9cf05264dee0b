// BlockManager on its own: reference counts, the free queue's order (which decides what the
// prefix cache evicts), prefix-cache lookups, consistency checks, and the Preview that lets
// Plan() name the exact blocks Commit() will hand out.
#include "scheduler/block_manager.h"

#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ropewire::scheduler {
namespace {

using ::testing::HasSubstr;

std::vector<int32_t> Tokens(int n, int32_t first) {
  std::vector<int32_t> tokens(n);
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

TEST(BlockManager, AllocatesInQueueOrderAndCountsOwners) {
  BlockManager m(4, 2, false);
  EXPECT_EQ(m.NumFree(), 4);
  EXPECT_EQ(m.Allocate(), 0);
  EXPECT_EQ(m.Allocate(), 1);
  EXPECT_EQ(m.NumFree(), 2);
  m.Take(1);
  EXPECT_EQ(m.RefCount(1), 2);
  m.Release(1);
  EXPECT_EQ(m.NumFree(), 2);  // still owned once
  m.Release(1);
  m.Release(0);
  EXPECT_EQ(m.NumFree(), 4);
  // Released blocks join the tail: the untouched ones come first, then 1, then 0.
  EXPECT_EQ(m.Allocate(), 2);
  EXPECT_EQ(m.Allocate(), 3);
  EXPECT_EQ(m.Allocate(), 1);
  EXPECT_EQ(m.Allocate(), 0);
  EXPECT_EQ(m.NumFree(), 0);
}

TEST(BlockManager, PrefixCacheFindsOnlyTheSameTokensAfterTheSameParent) {
  BlockManager m(4, 4, true);
  const std::vector<int32_t> tokens = Tokens(4, 10);
  const uint64_t hash = BlockManager::ChainHash(0, tokens.data(), 4);
  const int32_t block = m.Allocate();
  m.RegisterFull(block, hash, 0, tokens.data());
  EXPECT_EQ(m.NumCachedBlocks(), 1);
  EXPECT_EQ(m.LookupCached(hash, 0, tokens.data()), block);
  EXPECT_EQ(m.LookupCached(hash, 5, tokens.data()), -1) << "another parent is another prefix";
  const std::vector<int32_t> other = Tokens(4, 11);
  EXPECT_EQ(m.LookupCached(hash, 0, other.data()), -1) << "a colliding hash is not a hit";
  EXPECT_NE(BlockManager::ChainHash(0, tokens.data(), 4),
            BlockManager::ChainHash(1, tokens.data(), 4));
}

TEST(BlockManager, ReleasedCachedBlocksStayFindableUntilEvicted) {
  BlockManager m(2, 4, true);
  const std::vector<int32_t> tokens = Tokens(4, 1);
  const uint64_t hash = BlockManager::ChainHash(0, tokens.data(), 4);
  const int32_t cached = m.Allocate();
  m.RegisterFull(cached, hash, 0, tokens.data());
  m.Release(cached);
  EXPECT_EQ(m.NumFree(), 2);
  EXPECT_EQ(m.LookupCached(hash, 0, tokens.data()), cached);
  // A hit takes the block out of the free queue.
  m.Take(cached);
  EXPECT_EQ(m.NumFree(), 1);
  m.Release(cached);
  // Allocation evicts the least recently released block first: the other one, then `cached`.
  EXPECT_NE(m.Allocate(), cached);
  EXPECT_EQ(m.LookupCached(hash, 0, tokens.data()), cached);
  EXPECT_EQ(m.Allocate(), cached);
  EXPECT_EQ(m.LookupCached(hash, 0, tokens.data()), -1) << "evicted blocks forget their hash";
  EXPECT_EQ(m.NumCachedBlocks(), 0);
}

TEST(BlockManager, WithoutPrefixCachingNothingIsFound) {
  BlockManager m(2, 4, false);
  const std::vector<int32_t> tokens = Tokens(4, 1);
  const uint64_t hash = BlockManager::ChainHash(0, tokens.data(), 4);
  m.RegisterFull(m.Allocate(), hash, 0, tokens.data());
  EXPECT_EQ(m.LookupCached(hash, 0, tokens.data()), -1);
}

TEST(BlockManager, ConsistencyCheckFindsWrongOwnership) {
  BlockManager m(3, 2, false);
  const int32_t a = m.Allocate();
  const int32_t b = m.Allocate();
  std::vector<int32_t> table = {a, b};
  EXPECT_TRUE(m.CheckConsistency({&table}).ok());
  std::vector<int32_t> doubled = {a, b, b};
  EXPECT_THAT(std::string(m.CheckConsistency({&doubled}).message()), HasSubstr("block 1"));
  std::vector<int32_t> missing = {a};
  EXPECT_THAT(std::string(m.CheckConsistency({&missing}).message()), HasSubstr("but 0 owners"));
  std::vector<int32_t> free_but_owned = {a, b, 2};
  EXPECT_FALSE(m.CheckConsistency({&free_but_owned}).ok());
}

TEST(BlockManagerPreview, NamesTheBlocksTheRealPoolHandsOut) {
  BlockManager m(6, 2, false);
  for (int32_t expected = 0; expected < 3; ++expected) ASSERT_EQ(m.Allocate(), expected);
  // A plan: release 1, allocate four, take 0 once more.
  BlockManager::Preview p(m);
  EXPECT_EQ(p.Available(), 3);
  p.Release(1);
  EXPECT_EQ(p.Available(), 4);
  std::vector<BlockOp> ops = {{BlockOp::Kind::kRelease, 1}};
  std::vector<int32_t> predicted;
  for (int i = 0; i < 4; ++i) {
    predicted.push_back(p.Allocate());
    ops.push_back({BlockOp::Kind::kAllocate, predicted.back()});
  }
  EXPECT_EQ(predicted, (std::vector<int32_t>{3, 4, 5, 1}));  // the released block comes last
  EXPECT_EQ(p.Available(), 0);
  EXPECT_TRUE(p.Evicted(1));
  p.Take(0);
  EXPECT_EQ(p.RefCount(0), 2);
  ops.push_back({BlockOp::Kind::kTake, 0});
  // The preview changed nothing...
  EXPECT_EQ(m.NumFree(), 3);
  EXPECT_EQ(m.RefCount(1), 1);
  // ...and replaying its operations gives exactly what it predicted (Apply aborts otherwise).
  for (const BlockOp& op : ops) m.Apply(op);
  EXPECT_EQ(m.NumFree(), 0);
  EXPECT_EQ(m.RefCount(0), 2);
  std::vector<int32_t> owners = {0, 0, 2, 3, 4, 5, 1};
  EXPECT_TRUE(m.CheckConsistency({&owners}).ok()) << m.CheckConsistency({&owners});
}

TEST(BlockManagerPreview, ABlockReleasedAndTakenBackIsNotHandedOutAgain) {
  BlockManager m(3, 2, true);
  const int32_t a = m.Allocate();
  BlockManager::Preview p(m);
  p.Release(a);
  p.Take(a);  // a prefix hit on the block this plan just released
  EXPECT_EQ(p.Available(), 2);
  EXPECT_EQ(p.Allocate(), 1);
  EXPECT_EQ(p.Allocate(), 2);
  EXPECT_EQ(p.Available(), 0);
  EXPECT_FALSE(p.Evicted(a));
}

}  // namespace
}  // namespace ropewire::scheduler
