#pragma once
// The state records of consumer groups in __consumer_offsets (a compacted
// topic: the latest record per key wins, a null value deletes the key).
//
// Key layout (little endian), version byte first so it can evolve:
//   offset commit   [u8 1][u8 1][u16 n][group: n bytes][u16 m][topic: m bytes][i32 partition]
//   group metadata  [u8 1][u8 2][u16 n][group: n bytes]
//   share state     [u8 1][u8 3][u16 n][group: n bytes][u16 m][topic: m bytes][i32 partition]
// Values: group_records.fbs (OffsetCommitValue, GroupValue,
// ShareStateValue); a tombstone (absent value) deletes the offset, the
// group's metadata, or the share partition's state.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "broker/group/types.h"

namespace runnel::group {

struct offset_key {
  std::string group;
  topic_partition tp;
};
struct group_key {
  std::string group;
};
struct share_state_key {
  std::string group;
  topic_partition tp;
};
using record_key = std::variant<offset_key, group_key, share_state_key>;

std::vector<std::byte> encode_key(const offset_key& k);
std::vector<std::byte> encode_key(const group_key& k);
std::vector<std::byte> encode_key(const share_state_key& k);
// nullopt: not a key of ours (unknown version or type, or truncated).
std::optional<record_key> decode_key(std::span<const std::byte> bytes);

std::vector<std::byte> encode_offset_value(const committed_offset& v);
std::optional<committed_offset> decode_offset_value(std::span<const std::byte> bytes);

// The persisted part of `g` (epochs, assignor, members, target, partition
// counts); offsets travel in their own records.
std::vector<std::byte> encode_group_value(const group& g);
// Replaces the persisted part of `g` with `bytes`; false when they do not
// verify (g is then unchanged).
bool decode_group_value(std::span<const std::byte> bytes, group& g);

std::vector<std::byte> encode_share_state_value(const share_state& s);
// nullopt when `bytes` do not verify or name an unknown state (the runs'
// order is share_partition::from_state's to check).
std::optional<share_state> decode_share_state_value(std::span<const std::byte> bytes);

}  // namespace runnel::group
