//! ITU-T G.107 E-model (placeholder, filled in next).
