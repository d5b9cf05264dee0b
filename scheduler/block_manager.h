// Paged KV block accounting: a fixed pool of blocks, reference counts, per-sequence block tables
// (owned by the sequences) and prefix caching.
//
// Free blocks wait in one queue, oldest released first. A released block that holds a full,
// hashed run of tokens keeps its hash while it waits, so a later sequence with the same prefix
// can take it back (a prefix-cache hit); allocation pops the queue's head, which evicts the
// least recently released cached block and forgets its hash. The pool's operations are O(1) per
// block; a Preview's are too, except taking back a block the same plan released (linear in that
// plan's releases) and skipping queue entries the plan already moved.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"

namespace ropewire::scheduler {

// One change to the pool, recorded by Scheduler::Plan() and replayed in order by Commit().
struct BlockOp {
  enum class Kind { kAllocate, kTake, kRelease };
  Kind kind;
  int32_t block;
};

class BlockManager {
 public:
  BlockManager(int num_blocks, int block_size, bool enable_prefix_caching);

  int num_blocks() const { return static_cast<int>(ref_count_.size()); }
  int block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  int NumFree() const { return num_free_; }
  int RefCount(int32_t block) const { return ref_count_[block]; }
  int NumCachedBlocks() const { return static_cast<int>(hash_to_block_.size()); }

  // Hash of a full block of tokens chained to its predecessor's hash (0 for the first block).
  static uint64_t ChainHash(uint64_t parent_hash, const int32_t* tokens, int n);

  // Block caching exactly these tokens after a block with `parent_hash`, or -1.
  int32_t LookupCached(uint64_t hash, uint64_t parent_hash, const int32_t* tokens) const;

  // Mutations; Scheduler::Commit() replays a plan's BlockOps through Apply().
  int32_t Allocate();             // pops the queue head (evicting its cache entry); ref = 1
  void Take(int32_t block);       // one more owner (a prefix-cache hit)
  void Release(int32_t block);    // one owner fewer; at zero the block joins the queue's tail
  void Apply(const BlockOp& op);  // kAllocate checks the popped block is op.block
  // Records that `block` now holds a full, computed run of tokens with this chained hash.
  void RegisterFull(int32_t block, uint64_t hash, uint64_t parent_hash, const int32_t* tokens);

  // Simulates a plan's operations on the current pool without changing it, so Plan() can name
  // the exact blocks Commit() will hand out.
  class Preview {
   public:
    explicit Preview(const BlockManager& manager);
    int Available() const { return available_; }
    int32_t Allocate();
    void Take(int32_t block);
    void Release(int32_t block);
    // True once this plan handed `block` out fresh, so its cached contents are gone.
    bool Evicted(int32_t block) const { return evicted_.count(block) > 0; }
    int RefCount(int32_t block) const;

   private:
    const BlockManager& m_;
    int32_t cursor_;  // next node of the real queue to consider
    std::unordered_map<int32_t, int> ref_delta_;
    std::unordered_set<int32_t> moved_;  // real-queue nodes this plan took out
    std::vector<int32_t> tail_;          // blocks this plan released, in order
    size_t tail_cursor_ = 0;
    std::unordered_set<int32_t> evicted_;
    int available_;
  };

  // Verifies the pool against the sequences' block tables: every block is either free (in the
  // queue, ref 0) or owned exactly ref_count times, and the queue has no duplicates.
  absl::Status CheckConsistency(const std::vector<const std::vector<int32_t>*>& tables) const;

 private:
  void QueuePushBack(int32_t block);
  void QueueRemove(int32_t block);
  void ForgetHash(int32_t block);

  int block_size_;
  bool prefix_caching_;
  std::vector<int> ref_count_;
  // Intrusive doubly linked free queue.
  std::vector<int32_t> prev_, next_;
  std::vector<bool> in_queue_;
  int32_t head_ = -1, tail_ = -1;
  int num_free_ = 0;
  // Prefix cache.
  std::vector<bool> hashed_;
  std::vector<uint64_t> block_hash_, parent_hash_;
  std::vector<int32_t> block_tokens_;  // [num_blocks * block_size] tokens of hashed blocks
  std::unordered_map<uint64_t, int32_t> hash_to_block_;
};

}  // namespace ropewire::scheduler
