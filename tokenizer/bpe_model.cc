#include "tokenizer/bpe_model.h"

#include <queue>

#include "tokenizer/byte_level.h"
#include "tokenizer/string_util.h"
#include "tokenizer/unicode.h"

namespace ropewire::tokenizer {
namespace {

// Words longer than this are not cached; they are rare and would crowd out common words.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kCacheShards = 32;
constexpr size_t kCacheEntriesPerShard = 4096;
// Above this many symbols the merge loop switches from a linear scan to a priority queue.
constexpr size_t kLinearMergeLimit = 96;

// "<0x0A>": the spelling of byte-fallback tokens.
std::string ByteTokenName(unsigned char b) {
  constexpr char kHex[] = "0123456789ABCDEF";
  return std::string{'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
}

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

// Word -> ids, shared by all threads. Sharded so concurrent encodes rarely contend; a full
// shard stops accepting words (like the reference's bounded cache) rather than evicting.
class BpeModel::WordCache {
 public:
  bool Lookup(std::string_view word, std::vector<int32_t>& ids) const {
    const size_t hash = StringViewHash{}(word);
    const Shard& shard = shards_[hash % kCacheShards];
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.entries.find(word);
    if (it == shard.entries.end()) return false;
    ids.insert(ids.end(), it->second.begin(), it->second.end());
    return true;
  }
  void Insert(std::string_view word, const int32_t* ids, size_t count) {
    const size_t hash = StringViewHash{}(word);
    Shard& shard = shards_[hash % kCacheShards];
    std::lock_guard<std::mutex> lock(shard.mutex);
    if (shard.entries.size() >= kCacheEntriesPerShard) return;
    shard.entries.emplace(word, std::vector<int32_t>(ids, ids + count));
  }

 private:
  struct Shard {
    mutable std::mutex mutex;
    StringMap<std::vector<int32_t>> entries;
  };
  std::array<Shard, kCacheShards> shards_;
};

BpeModel::BpeModel() : cache_(std::make_unique<WordCache>()) {
  byte_fallback_ids_.fill(-1);
  raw_byte_ids_.fill(-1);
}

BpeModel::~BpeModel() = default;

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::Parse(const Json& json,
                                                          std::string_view where) {
  std::unique_ptr<BpeModel> model(new BpeModel());
  auto vocab = RequiredMember(json, "vocab", where);
  if (!vocab.ok()) return vocab.status();
  if (absl::Status status = model->LoadVocab(**vocab, JsonPath(where, "vocab")); !status.ok()) {
    return status;
  }
  if (const Json* dropout = OptionalMember(json, "dropout");
      dropout != nullptr && !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    return absl::UnimplementedError(
        Concat(JsonPath(where, "dropout"),
               ": BPE dropout is a training-time randomisation and is not "
               "supported; set it to null"));
  }
  auto unk = GetString(json, "unk_token", where, "");
  if (!unk.ok()) return unk.status();
  if (!unk->empty()) {
    // The reference only needs the unknown token when a character is missing; a missing unk
    // entry is then an error there too, so report it at load time.
    auto id = model->TokenToId(*unk);
    if (!id) {
      return JsonError(JsonPath(where, "unk_token"),
                       Concat("unknown token '", *unk, "' is not in the vocabulary"));
    }
    model->unk_id_ = *id;
  }
  struct Flag {
    const char* key;
    bool* value;
  };
  for (const Flag& flag :
       {Flag{"fuse_unk", &model->fuse_unk_}, Flag{"byte_fallback", &model->byte_fallback_},
        Flag{"ignore_merges", &model->ignore_merges_}}) {
    auto value = GetBool(json, flag.key, where, false);
    if (!value.ok()) return value.status();
    *flag.value = *value;
  }
  for (auto [key, target] :
       {std::pair{"continuing_subword_prefix", &model->continuing_subword_prefix_},
        std::pair{"end_of_word_suffix", &model->end_of_word_suffix_}}) {
    auto value = GetString(json, key, where, "");
    if (!value.ok()) return value.status();
    *target = *std::move(value);
  }
  // Merges last: merged tokens are spelled with the continuing-subword prefix removed.
  const Json* merges = OptionalMember(json, "merges");
  if (merges != nullptr) {
    if (absl::Status status = model->LoadMerges(*merges, JsonPath(where, "merges")); !status.ok()) {
      return status;
    }
  }
  for (int b = 0; b < 256; ++b) {
    model->byte_fallback_ids_[b] =
        model->TokenToId(ByteTokenName(static_cast<unsigned char>(b))).value_or(-1);
  }
  return model;
}

absl::Status BpeModel::LoadVocab(const Json& vocab, std::string_view where) {
  if (!vocab.is_object()) return JsonError(where, "expected an object of token -> id");
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX) {
      return JsonError(JsonPath(where, it.key()), "expected a non-negative integer id");
    }
    max_id = std::max(max_id, it.value().get<int64_t>());
  }
  id_to_token_.resize(max_id + 1);
  id_present_.assign(max_id + 1, false);
  vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    vocab_[it.key()] = id;
    id_to_token_[id] = it.key();
    id_present_[id] = true;
  }
  return absl::OkStatus();
}

absl::Status BpeModel::LoadMerges(const Json& merges, std::string_view where) {
  if (!merges.is_array()) return JsonError(where, "expected an array");
  merges_.reserve(merges.size());
  int32_t rank = 0;
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& entry = merges[i];
    const std::string at = JsonIndex(where, i);
    std::string left, right;
    if (entry.is_string()) {  // "left right", the format before pairs
      const std::string text = entry.get<std::string>();
      if (text.rfind("#version", 0) == 0) continue;
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        return JsonError(at, Concat("merge '", text,
                                    "' is not two tokens split by a "
                                    "single space"));
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      left = entry[0].get<std::string>();
      right = entry[1].get<std::string>();
    } else {
      return JsonError(at, "expected \"left right\" or [left, right]");
    }
    const std::optional<int32_t> left_id = TokenToId(left);
    const std::optional<int32_t> right_id = TokenToId(right);
    const std::string_view suffix =
        std::string_view(right).substr(std::min(right.size(), continuing_subword_prefix_.size()));
    const std::string merged = Concat(left, suffix);
    const std::optional<int32_t> merged_id = TokenToId(merged);
    for (const auto& [token, id] :
         {std::pair<const std::string*, std::optional<int32_t>>{&left, left_id},
          {&right, right_id},
          {&merged, merged_id}}) {
      if (!id) {
        return JsonError(at,
                         Concat("merge names token '", *token, "' which is not in the vocabulary"));
      }
    }
    merges_[PairKey(*left_id, *right_id)] = Merge{rank, *merged_id};  // later duplicates win
    ++rank;
  }
  return absl::OkStatus();
}

void BpeModel::ExpectRawByteWords() {
  raw_byte_words_ = true;
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::Get();
  for (int b = 0; b < 256; ++b) {
    raw_byte_ids_[b] = TokenToId(alphabet.CharFor(static_cast<unsigned char>(b))).value_or(-1);
  }
  if (!ignore_merges_) return;
  std::string raw;
  for (const auto& [token, id] : vocab_) {
    raw.clear();
    if (alphabet.Decode(token, raw)) raw_vocab_.emplace(raw, id);
  }
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= id_limit() || !id_present_[id]) return nullptr;
  return &id_to_token_[id];
}

const BpeModel::Merge* BpeModel::FindMerge(int32_t left, int32_t right) const {
  auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::TokenizeWord(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const auto& whole_words = raw_byte_words_ ? raw_vocab_ : vocab_;
    if (auto it = whole_words.find(word); it != whole_words.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable && cache_->Lookup(word, ids)) return;

  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  InitialSymbols(word, symbols);
  if (symbols.size() > kLinearMergeLimit) {
    MergeSymbolsWithQueue(symbols);
  } else {
    MergeSymbols(symbols);
  }
  const size_t first_new = ids.size();
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    ids.push_back(symbols[i].id);
  }
  if (cacheable) cache_->Insert(word, ids.data() + first_new, ids.size() - first_new);
}

void BpeModel::InitialSymbols(std::string_view word, std::vector<Symbol>& symbols) const {
  int32_t pending_unk = -1;  // an unknown-token symbol waiting to be emitted (for fusing)
  const bool plain_chars = continuing_subword_prefix_.empty() && end_of_word_suffix_.empty();
  size_t pos = 0;
  while (pos < word.size()) {
    const size_t begin = pos;
    if (raw_byte_words_) {
      ++pos;
      const int32_t id = raw_byte_ids_[static_cast<unsigned char>(word[begin])];
      if (id >= 0 && plain_chars && pending_unk < 0) {
        symbols.push_back({id, static_cast<int32_t>(symbols.size()) - 1, -1});
        continue;
      }
      const std::string_view mapped =
          ByteLevelAlphabet::Get().CharFor(static_cast<unsigned char>(word[begin]));
      AddCharacterSymbol(mapped, begin == 0, pos == word.size(), symbols, pending_unk);
      continue;
    }
    pos += Utf8SequenceLength(static_cast<unsigned char>(word[begin]));
    pos = std::min(pos, word.size());
    AddCharacterSymbol(word.substr(begin, pos - begin), begin == 0, pos == word.size(), symbols,
                       pending_unk);
  }
  if (pending_unk >= 0) symbols.push_back({pending_unk, 0, -1});
  for (size_t i = 0; i < symbols.size(); ++i) {
    symbols[i].prev = static_cast<int32_t>(i) - 1;
    symbols[i].next = i + 1 < symbols.size() ? static_cast<int32_t>(i) + 1 : -1;
  }
}

void BpeModel::AddCharacterSymbol(std::string_view piece, bool is_first, bool is_last,
                                  std::vector<Symbol>& symbols, int32_t& pending_unk) const {
  std::string decorated;
  const bool add_prefix = !is_first && !continuing_subword_prefix_.empty();
  const bool add_suffix = is_last && !end_of_word_suffix_.empty();
  if (add_prefix || add_suffix) {
    decorated = Concat(add_prefix ? continuing_subword_prefix_ : "", piece,
                       add_suffix ? end_of_word_suffix_ : "");
    piece = decorated;  // byte fallback spells the decorated text too, like the reference
  }
  if (const std::optional<int32_t> id = TokenToId(piece)) {
    if (pending_unk >= 0) symbols.push_back({pending_unk, 0, -1});
    pending_unk = -1;
    symbols.push_back({*id, 0, -1});
    return;
  }
  if (byte_fallback_) {
    bool all_present = true;
    for (char b : piece) all_present &= byte_fallback_ids_[static_cast<unsigned char>(b)] >= 0;
    if (all_present) {
      // The reference emits the byte tokens without flushing a pending unknown token first.
      for (char b : piece) {
        symbols.push_back({byte_fallback_ids_[static_cast<unsigned char>(b)], 0, -1});
      }
      return;
    }
  }
  if (!unk_id_) return;                       // the reference drops characters it cannot represent
  if (pending_unk >= 0 && fuse_unk_) return;  // fused into the pending unknown token
  if (pending_unk >= 0) symbols.push_back({pending_unk, 0, -1});
  pending_unk = *unk_id_;
}

void BpeModel::MergeInto(std::vector<Symbol>& symbols, int32_t left, int32_t new_id) const {
  const int32_t right = symbols[left].next;
  symbols[left].id = new_id;
  symbols[left].next = symbols[right].next;
  if (symbols[right].next >= 0) symbols[symbols[right].next].prev = left;
  symbols[right].id = -1;  // removed
}

// Linear scan for the best pair; each pair's merge is looked up once and refreshed only when a
// neighbour changes. Fast for the short words that make up almost all text.
void BpeModel::MergeSymbols(std::vector<Symbol>& symbols) const {
  const int32_t count = static_cast<int32_t>(symbols.size());
  if (count < 2) return;
  thread_local std::vector<const Merge*> pair_merge;  // merge of (i, next(i)), or null
  pair_merge.assign(count, nullptr);
  for (int32_t i = 0; i + 1 < count; ++i)
    pair_merge[i] = FindMerge(symbols[i].id, symbols[i + 1].id);
  while (true) {
    int32_t best = -1;
    int32_t best_rank = INT32_MAX;
    for (int32_t i = 0; i >= 0; i = symbols[i].next) {
      if (pair_merge[i] != nullptr && pair_merge[i]->rank < best_rank) {
        best_rank = pair_merge[i]->rank;
        best = i;
      }
    }
    if (best < 0) return;
    MergeInto(symbols, best, pair_merge[best]->new_id);
    const int32_t next = symbols[best].next;
    pair_merge[best] = next >= 0 ? FindMerge(symbols[best].id, symbols[next].id) : nullptr;
    const int32_t prev = symbols[best].prev;
    if (prev >= 0) pair_merge[prev] = FindMerge(symbols[prev].id, symbols[best].id);
  }
}

// The reference's algorithm for long words: a min-queue of (rank, position) with stale entries
// skipped when the pair at that position no longer produces the queued token.
void BpeModel::MergeSymbolsWithQueue(std::vector<Symbol>& symbols) const {
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto push_pair = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    if (const Merge* merge = FindMerge(symbols[left].id, symbols[right].id)) {
      queue.push({merge->rank, left, merge->new_id});
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const int32_t right = symbols[top.pos].next;
    if (symbols[top.pos].id < 0 || right < 0) continue;
    const Merge* current = FindMerge(symbols[top.pos].id, symbols[right].id);
    if (current == nullptr || current->new_id != top.new_id) continue;  // stale
    MergeInto(symbols, top.pos, top.new_id);
    if (symbols[top.pos].prev >= 0) push_pair(symbols[top.pos].prev);
    push_pair(top.pos);
  }
}

}  // namespace ropewire::tokenizer
