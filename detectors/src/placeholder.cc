// Placeholder translation unit; removed once real sources land.
namespace driftwatch::detectors {}
