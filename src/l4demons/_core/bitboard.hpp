// Bitboards: square sets as 64-bit words, a1 = bit 0 ... h8 = bit 63 (python-chess's numbering).
//
// Attack tables are filled once at start-up (init_tables). Sliding pieces use
// the classical ray approach: the ray in each direction, cut at the first
// blocker (found with one bit scan). It needs no magic numbers and costs a few
// nanoseconds per direction, well below what the rest of a search step costs.
#pragma once

#include <cstdint>

namespace l4d {

using Bitboard = uint64_t;

enum Color : int { WHITE = 0, BLACK = 1 };
// Piece types numbered as python-chess numbers them.
enum PieceType : int { NO_PIECE = 0, PAWN = 1, KNIGHT = 2, BISHOP = 3, ROOK = 4, QUEEN = 5, KING = 6 };

constexpr Bitboard square_bb(int sq) { return 1ULL << sq; }
constexpr int file_of(int sq) { return sq & 7; }
constexpr int rank_of(int sq) { return sq >> 3; }

constexpr Bitboard RANK_1 = 0xFFULL;
constexpr Bitboard RANK_8 = 0xFFULL << 56;
constexpr Bitboard DARK_SQUARES = 0xAA55AA55AA55AA55ULL;
constexpr Bitboard LIGHT_SQUARES = ~DARK_SQUARES;

inline int lsb(Bitboard b) { return __builtin_ctzll(b); }
inline int msb(Bitboard b) { return 63 - __builtin_clzll(b); }
inline int popcount(Bitboard b) { return __builtin_popcountll(b); }
inline Bitboard flip_vertical(Bitboard b) { return __builtin_bswap64(b); }

// Directions: N, NE, E, SE, S, SW, W, NW (the first four of N, NE, E, NW grow the square index).
enum Direction : int { DIR_N, DIR_NE, DIR_E, DIR_SE, DIR_S, DIR_SW, DIR_W, DIR_NW };

struct Tables {
    Bitboard knight[64];
    Bitboard king[64];
    Bitboard pawn[2][64];      // squares a pawn of that colour on sq attacks
    Bitboard ray[8][64];       // from sq (exclusive) to the board edge
    Bitboard rook_rays[64];    // rook moves on an empty board
    Bitboard bishop_rays[64];  // bishop moves on an empty board
    Bitboard between[64][64];  // squares strictly between two aligned squares, else 0
    Bitboard line[64][64];     // the whole line through two aligned squares, else 0
};

extern Tables T;
void init_tables();

inline Bitboard ray_attacks(int dir, int sq, Bitboard occ) {
    Bitboard a = T.ray[dir][sq];
    Bitboard blockers = a & occ;
    if (blockers) {
        bool up = dir == DIR_N || dir == DIR_NE || dir == DIR_E || dir == DIR_NW;
        a ^= T.ray[dir][up ? lsb(blockers) : msb(blockers)];
    }
    return a;
}

inline Bitboard rook_attacks(int sq, Bitboard occ) {
    return ray_attacks(DIR_N, sq, occ) | ray_attacks(DIR_E, sq, occ) | ray_attacks(DIR_S, sq, occ) |
           ray_attacks(DIR_W, sq, occ);
}

inline Bitboard bishop_attacks(int sq, Bitboard occ) {
    return ray_attacks(DIR_NE, sq, occ) | ray_attacks(DIR_SE, sq, occ) | ray_attacks(DIR_SW, sq, occ) |
           ray_attacks(DIR_NW, sq, occ);
}

}  // namespace l4d
