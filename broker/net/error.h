#pragma once
// What net/ returns when it fails: the code of the part that failed (the
// system's for sockets and files, storage::, meta::, cluster::) and a
// message naming what. net/ adds no codes of its own: every failure it
// reports already has one, and to_wire (context.h) maps them all to the
// protocol's.

#include <string>
#include <system_error>

namespace runnel::net {

struct error {
  std::error_code code;
  std::string message;
};

}  // namespace runnel::net
