/** Weft's version, reported by /server_info and `weft --version`. */
export const VERSION = '0.1.0';
