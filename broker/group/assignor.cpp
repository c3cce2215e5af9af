#include "broker/group/assignor.h"

namespace runnel::group {

assignor_fn find_assignor(std::string_view name) {
  if (name == "uniform") return assign_uniform;
  if (name == "range") return assign_range;
  return nullptr;
}

}  // namespace runnel::group
