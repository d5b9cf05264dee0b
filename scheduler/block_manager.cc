#include "scheduler/block_manager.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ropewire::scheduler {

BlockManager::BlockManager(int num_blocks, int block_size, bool enable_prefix_caching)
    : block_size_(block_size),
      prefix_caching_(enable_prefix_caching),
      ref_count_(num_blocks, 0),
      prev_(num_blocks, -1),
      next_(num_blocks, -1),
      in_queue_(num_blocks, false),
      hashed_(num_blocks, false),
      block_hash_(num_blocks, 0),
      parent_hash_(num_blocks, 0) {
  if (prefix_caching_) block_tokens_.assign(size_t(num_blocks) * block_size, 0);
  for (int32_t b = 0; b < num_blocks; ++b) QueuePushBack(b);
}

uint64_t BlockManager::ChainHash(uint64_t parent_hash, const int32_t* tokens, int n) {
  // FNV-1a over the parent hash and the token ids, finished with a 64-bit mixer.
  uint64_t h = 0xcbf29ce484222325ull ^ parent_hash;
  for (int i = 0; i < n; ++i) {
    h ^= static_cast<uint32_t>(tokens[i]);
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h == 0 ? 1 : h;  // 0 is reserved for "no parent"
}

int32_t BlockManager::LookupCached(uint64_t hash, uint64_t parent_hash,
                                   const int32_t* tokens) const {
  if (!prefix_caching_) return -1;
  auto it = hash_to_block_.find(hash);
  if (it == hash_to_block_.end()) return -1;
  const int32_t block = it->second;
  if (parent_hash_[block] != parent_hash ||
      std::memcmp(&block_tokens_[size_t(block) * block_size_], tokens,
                  sizeof(int32_t) * block_size_) != 0) {
    return -1;  // a hash collision, not the same prefix
  }
  return block;
}

void BlockManager::QueuePushBack(int32_t block) {
  prev_[block] = tail_;
  next_[block] = -1;
  if (tail_ >= 0)
    next_[tail_] = block;
  else
    head_ = block;
  tail_ = block;
  in_queue_[block] = true;
  ++num_free_;
}

void BlockManager::QueueRemove(int32_t block) {
  if (prev_[block] >= 0)
    next_[prev_[block]] = next_[block];
  else
    head_ = next_[block];
  if (next_[block] >= 0)
    prev_[next_[block]] = prev_[block];
  else
    tail_ = prev_[block];
  prev_[block] = next_[block] = -1;
  in_queue_[block] = false;
  --num_free_;
}

void BlockManager::ForgetHash(int32_t block) {
  if (!hashed_[block]) return;
  auto it = hash_to_block_.find(block_hash_[block]);
  if (it != hash_to_block_.end() && it->second == block) hash_to_block_.erase(it);
  hashed_[block] = false;
}

int32_t BlockManager::Allocate() {
  if (head_ < 0) std::abort();  // the scheduler plans within NumFree(); running dry is a bug
  const int32_t block = head_;
  QueueRemove(block);
  ForgetHash(block);
  ref_count_[block] = 1;
  return block;
}

void BlockManager::Take(int32_t block) {
  if (ref_count_[block] == 0) QueueRemove(block);
  ++ref_count_[block];
}

void BlockManager::Release(int32_t block) {
  if (ref_count_[block] <= 0) std::abort();  // double release: a bookkeeping bug
  // Released blocks join the tail: cached ones are evicted oldest first, and Preview can
  // predict the order exactly.
  if (--ref_count_[block] == 0) QueuePushBack(block);
}

void BlockManager::Apply(const BlockOp& op) {
  switch (op.kind) {
    case BlockOp::Kind::kAllocate:
      if (Allocate() != op.block) std::abort();  // Plan and Commit disagree: a bug
      break;
    case BlockOp::Kind::kTake: Take(op.block); break;
    case BlockOp::Kind::kRelease: Release(op.block); break;
  }
}

void BlockManager::RegisterFull(int32_t block, uint64_t hash, uint64_t parent_hash,
                                const int32_t* tokens) {
  if (!prefix_caching_ || hashed_[block]) return;
  if (hash_to_block_.count(hash)) return;  // another block already caches these tokens
  hash_to_block_[hash] = block;
  hashed_[block] = true;
  block_hash_[block] = hash;
  parent_hash_[block] = parent_hash;
  std::memcpy(&block_tokens_[size_t(block) * block_size_], tokens, sizeof(int32_t) * block_size_);
}

absl::Status BlockManager::CheckConsistency(
    const std::vector<const std::vector<int32_t>*>& tables) const {
  std::vector<int> owners(num_blocks(), 0);
  for (const auto* table : tables) {
    for (int32_t b : *table) {
      if (b < 0 || b >= num_blocks()) return absl::InternalError(absl::StrCat("invalid block ", b));
      ++owners[b];
    }
  }
  int queued = 0;
  for (int32_t b = head_, prev = -1; b >= 0; prev = b, b = next_[b]) {
    if (prev_[b] != prev) return absl::InternalError(absl::StrCat("queue links broken at ", b));
    if (++queued > num_blocks()) return absl::InternalError("free queue has a cycle");
  }
  if (queued != num_free_) return absl::InternalError("free count disagrees with the queue");
  for (int32_t b = 0; b < num_blocks(); ++b) {
    if (owners[b] != ref_count_[b]) {
      return absl::InternalError(absl::StrCat("block ", b, " has ref count ", ref_count_[b],
                                              " but ", owners[b], " owners"));
    }
    if ((ref_count_[b] == 0) != bool(in_queue_[b])) {
      return absl::InternalError(absl::StrCat(
          "block ", b, " is ", in_queue_[b] ? "free but owned" : "lost (unowned, not free)"));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Preview

BlockManager::Preview::Preview(const BlockManager& manager)
    : m_(manager), cursor_(manager.head_), available_(manager.num_free_) {}

int BlockManager::Preview::RefCount(int32_t block) const {
  auto it = ref_delta_.find(block);
  return m_.ref_count_[block] + (it == ref_delta_.end() ? 0 : it->second);
}

int32_t BlockManager::Preview::Allocate() {
  while (cursor_ >= 0) {
    const int32_t block = cursor_;
    cursor_ = m_.next_[block];
    if (moved_.count(block)) continue;  // taken out of its place by this plan
    ++ref_delta_[block];
    evicted_.insert(block);
    moved_.insert(block);
    --available_;
    return block;
  }
  while (tail_cursor_ < tail_.size()) {
    const int32_t block = tail_[tail_cursor_++];
    if (RefCount(block) != 0) continue;  // taken back after this plan released it
    ++ref_delta_[block];
    evicted_.insert(block);
    --available_;
    return block;
  }
  std::abort();  // callers check Available() first
}

void BlockManager::Preview::Take(int32_t block) {
  if (RefCount(block) == 0) {
    --available_;
    moved_.insert(block);
    // If this plan released it earlier, it leaves the simulated tail too.
    for (size_t i = tail_cursor_; i < tail_.size(); ++i) {
      if (tail_[i] == block) {
        tail_.erase(tail_.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
  }
  ++ref_delta_[block];
}

void BlockManager::Preview::Release(int32_t block) {
  if (--ref_delta_[block] + m_.ref_count_[block] == 0) {
    ++available_;
    tail_.push_back(block);
  }
}

}  // namespace ropewire::scheduler
