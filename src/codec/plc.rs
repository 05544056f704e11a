//! G.711 packet loss concealment (placeholder, filled in next).
