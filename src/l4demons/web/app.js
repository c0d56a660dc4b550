// The play page: a person against the bot, through POST /move, with clocks.
// Board and move legality come from the vendored cm-chessboard and chess.js
// (vendor.js, built by build-vendor.sh); nothing is fetched from a CDN.
import {
  Chessboard, COLOR, INPUT_EVENT_TYPE, BORDER_TYPE, FEN,
  Markers, MARKER_TYPE, PromotionDialog, PROMOTION_DIALOG_RESULT_TYPE, Chess,
} from "./vendor.js"

const $ = (id) => document.getElementById(id)
const TICK_MS = 100
const RETRY_MS = 1000

const state = {
  game: new Chess(),
  human: "w",         // the person's colour: "w" or "b"
  clocks: {w: 180000, b: 180000},
  running: false,      // a game is on
  lastTick: 0,
  gameId: 0,           // bumps on "New game", so a late bot answer for an old game is dropped
  thinking: false,
}

const board = new Chessboard($("board"), {
  position: FEN.start,
  assetsUrl: "/static/",
  style: {borderType: BORDER_TYPE.frame, pieces: {file: "/static/pieces.svg"}, animationDuration: 150},
  extensions: [
    {class: Markers, props: {sprite: "/static/markers.svg", autoMarkers: MARKER_TYPE.frame}},
    {class: PromotionDialog},
  ],
})

// -- status, clocks, lists ---------------------------------------------------

function setStatus(text, kind = "info") {
  $("status").textContent = text
  $("status").dataset.state = kind
}

function formatClock(ms) {
  const t = Math.max(0, ms)
  const min = Math.floor(t / 60000)
  const sec = Math.floor((t % 60000) / 1000)
  const tenths = Math.floor((t % 1000) / 100)
  return `${min}:${String(sec).padStart(2, "0")}.${tenths}`
}

function drawClocks() {
  const bot = state.human === "w" ? "b" : "w"
  const turn = state.game.turn()
  for (const [id, colour] of [["bot-clock", bot], ["human-clock", state.human]]) {
    const el = $(id)
    el.querySelector(".time").textContent = formatClock(state.clocks[colour])
    el.classList.toggle("running", state.running && turn === colour)
    el.classList.toggle("low", state.clocks[colour] < 10000)
  }
}

function tick() {
  const now = performance.now()
  if (state.running) {
    const turn = state.game.turn()
    state.clocks[turn] -= now - state.lastTick
    if (state.clocks[turn] <= 0) {
      state.clocks[turn] = 0
      endGame(turn === state.human ? "You lost on time." : "The bot lost on time.")
    }
  }
  state.lastTick = now
  drawClocks()
}

function drawMoves() {
  const list = $("moves")
  list.replaceChildren()
  const history = state.game.history()
  for (let i = 0; i < history.length; i += 2) {
    const li = document.createElement("li")
    li.textContent = history[i] + (history[i + 1] ? "  " + history[i + 1] : "")
    list.append(li)
  }
}

function drawProbs(moveProbs, played, fenBefore) {
  const list = $("probs")
  list.replaceChildren()
  const top = Object.entries(moveProbs).sort((a, b) => b[1] - a[1]).slice(0, 5)
  const best = top.length ? top[0][1] || 1 : 1
  const san = sanNamer(fenBefore)
  for (const [uci, p] of top) {
    const li = document.createElement("li")
    li.dataset.move = uci
    li.classList.toggle("played", uci === played)
    const name = document.createElement("span")
    name.className = "san"
    name.textContent = san(uci)
    const bar = document.createElement("span")
    bar.className = "bar"
    bar.style.width = `${Math.round((p / best) * 100)}%`  // relative to the favourite
    const pct = document.createElement("span")
    pct.textContent = `${(p * 100).toFixed(1)}%`
    li.append(name, bar, pct)
    list.append(li)
  }
}

function sanNamer(fen) {
  return (uci) => {
    try {
      return new Chess(fen).move({from: uci.slice(0, 2), to: uci.slice(2, 4), promotion: uci[4]}).san
    } catch {
      return uci
    }
  }
}

function syncBoard(animated = true) {
  $("board").dataset.fen = state.game.fen()
  board.removeMarkers(MARKER_TYPE.frame)
  board.removeMarkers(MARKER_TYPE.square)
  const last = state.game.history({verbose: true}).at(-1)
  if (last) {
    board.addMarker(MARKER_TYPE.square, last.from)
    board.addMarker(MARKER_TYPE.square, last.to)
  }
  drawMoves()
  return board.setPosition(state.game.fen(), animated)
}

// -- the game ------------------------------------------------------------------

function gameOverText() {
  const g = state.game
  if (g.isCheckmate()) return g.turn() === state.human ? "Checkmate — the bot wins." : "Checkmate — you win!"
  if (g.isStalemate()) return "Stalemate — draw."
  if (g.isInsufficientMaterial()) return "Insufficient material — draw."
  if (g.isThreefoldRepetition()) return "Threefold repetition — draw."
  if (g.isDraw()) return "Fifty-move rule — draw."
  return null
}

function endGame(text) {
  state.running = false
  setStatus(text, "over")
  drawClocks()
}

function afterMove() {
  const over = gameOverText()
  if (over) {
    endGame(over)
    return
  }
  if (state.game.turn() === state.human) {
    setStatus("Your move.", "your-move")
  } else {
    botMove()
  }
}

async function botMove() {
  const id = state.gameId
  state.thinking = true
  setStatus("The bot is thinking…", "thinking")
  const fenBefore = state.game.fen()
  const botColour = state.game.turn()
  let response, data
  try {
    response = await fetch("/move", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({pgn: state.game.pgn(), timeleft: Math.max(0, Math.floor(state.clocks[botColour]))}),
    })
    data = await response.json()
  } catch (err) {
    if (id !== state.gameId) return
    state.thinking = false
    setStatus(`The server did not answer (${err}); retrying…`, "error")
    setTimeout(() => { if (id === state.gameId && state.running) botMove() }, RETRY_MS)
    return
  }
  if (id !== state.gameId || !state.running) return
  state.thinking = false
  if (response.status === 503) {
    setStatus(`Waiting for the model: ${data.error}`, "error")
    setTimeout(() => { if (id === state.gameId && state.running) botMove() }, RETRY_MS)
    return
  }
  if (!response.ok) {
    endGame(`The server refused the position: ${data.error}`)
    $("status").dataset.state = "error"
    return
  }
  tick()  // charge the thinking time to the bot before the turn passes
  if (!state.running) return
  try {
    state.game.move({from: data.move.slice(0, 2), to: data.move.slice(2, 4), promotion: data.move[4]})
  } catch {
    endGame(`The bot sent an illegal move (${data.move}); game stopped.`)
    $("status").dataset.state = "error"
    return
  }
  drawProbs(data.move_probs, data.move, fenBefore)
  $("logs").textContent = `${data.move} in ${Math.round(data.time_taken)} ms — ${data.logs}`
  await syncBoard(true)
  afterMove()
}

function legalFrom(square) {
  return state.game.moves({square, verbose: true})
}

function humanMove(move) {
  tick()  // charge the thinking time to the person before the turn passes
  if (!state.running) {  // flagged meanwhile: the move does not count
    syncBoard(false)
    return
  }
  state.game.move(move)
  syncBoard(true)
  afterMove()
}

function onMoveInput(event) {
  switch (event.type) {
    case INPUT_EVENT_TYPE.moveInputStarted: {
      if (!state.running || state.thinking || state.game.turn() !== state.human) return false
      const moves = legalFrom(event.squareFrom)
      for (const m of moves) board.addMarker(MARKER_TYPE.dot, m.to)
      return moves.length > 0
    }
    case INPUT_EVENT_TYPE.validateMoveInput: {
      board.removeMarkers(MARKER_TYPE.dot)
      const candidates = legalFrom(event.squareFrom).filter((m) => m.to === event.squareTo)
      if (candidates.length === 0) {
        setStatus(`Illegal move: ${event.squareFrom}-${event.squareTo}. Your move.`, "illegal")
        return false
      }
      if (candidates.some((m) => m.promotion)) {
        board.showPromotionDialog(event.squareTo, state.human === "w" ? COLOR.white : COLOR.black, (result) => {
          if (result && result.type === PROMOTION_DIALOG_RESULT_TYPE.pieceSelected) {
            humanMove({from: event.squareFrom, to: event.squareTo, promotion: result.piece.charAt(1)})
          } else {
            syncBoard(false)
          }
        })
        return true
      }
      // Let the board finish its own animation, then redraw from the game (castling, en passant).
      setTimeout(() => humanMove({from: event.squareFrom, to: event.squareTo}), 0)
      return true
    }
    case INPUT_EVENT_TYPE.moveInputCanceled:
      board.removeMarkers(MARKER_TYPE.dot)
      return
    default:
      return
  }
}

async function newGame() {
  state.gameId += 1
  state.thinking = false
  const side = $("side").value
  state.human = side === "random" ? (Math.random() < 0.5 ? "w" : "b") : side === "black" ? "b" : "w"
  const ms = Number($("tc").value)
  state.clocks = {w: ms, b: ms}
  state.game = new Chess()
  $("probs").replaceChildren()
  $("logs").textContent = ""
  board.disableMoveInput()
  await board.setOrientation(state.human === "w" ? COLOR.white : COLOR.black)
  await syncBoard(false)
  board.enableMoveInput(onMoveInput, state.human === "w" ? COLOR.white : COLOR.black)
  state.running = true
  state.lastTick = performance.now()
  drawClocks()
  afterMove()
}

// -- model status --------------------------------------------------------------

async function pollHealth() {
  let next = 2000
  try {
    const h = await (await fetch("/health")).json()
    const badge = $("model")
    badge.dataset.state = h.state
    if (h.state === "ready") {
      const what = h.origin === "random" ? "untrained network" : `${h.file} @ ${(h.commit || "?").slice(0, 8)} (${h.origin})`
      badge.textContent = `model: ${what}, ${h.net} on ${h.device}`
      next = 30000
    } else if (h.state === "failed") {
      badge.textContent = `model failed: ${h.error}`
      next = 30000
    } else {
      badge.textContent = "model: loading…"
    }
  } catch {
    $("model").textContent = "model: server unreachable"
  }
  setTimeout(pollHealth, next)
}

// ?clock=<ms> offers a custom clock (quick games, tests).
const custom = Number(new URLSearchParams(location.search).get("clock"))
if (custom > 0) {
  $("tc").append(new Option(`${formatClock(custom)} (custom)`, String(custom), true, true))
}

$("new-game").addEventListener("click", newGame)
setInterval(tick, TICK_MS)
pollHealth()
syncBoard(false)
drawClocks()
window.l4d = {state, board}  // for the browser test and the curious
