// The network's view of a position, identical to l4demons/encoding.py:
// the 99-byte record (encoding.POSITION_DTYPE) and the float input planes
// [20, 8, 8] unpacked from it, both in the side to move's frame, and the
// AlphaZero 8x8x73 policy index of a move.
#pragma once

#include <cstdint>

#include "board.hpp"

namespace l4d {

constexpr int NUM_PLANES = 20;
constexpr int POLICY_SIZE = 64 * 73;

#pragma pack(push, 1)
struct Record {
    uint64_t pieces[12];  // own pawn..king, then the opponent's, side-to-move frame
    int8_t ep;            // en passant square in that frame, -1 if none
    uint8_t flags;        // bit 0 repetition, bits 1-4 castling (own K, own Q, opp K, opp Q)
    uint8_t rule50;       // halfmove clock, capped at 255
};
#pragma pack(pop)
static_assert(sizeof(Record) == 99, "Record must match encoding.POSITION_DTYPE");

void init_policy_table();
// The policy index of ``m`` played by ``turn`` (-1 if the move has no index).
int policy_index(Move m, int turn);
Record encode_record(const Board& b, bool repetition);
// Writes planes [20 * 64] (float32) of one record; ``out`` need not be zeroed.
void write_planes(const Record& r, float* out);

}  // namespace l4d
