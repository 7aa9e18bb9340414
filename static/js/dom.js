// A small element builder and the page chrome shared by both pages. Text always goes in
// through textContent, never as HTML.

/**
 * h("button", {class: "btn", onclick: f, dataset: {testid: "pause"}}, "Pause")
 * Attributes named on* become listeners; `dataset` entries become data-* attributes;
 * null, undefined and false attributes are left out.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attributes);
  append(element, children);
  return element;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attributes);
  append(element, children);
  return element;
}

function setAttributes(element, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      for (const [key, data] of Object.entries(value)) element.dataset[key] = data;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Set `element`'s text only when it changed (keeps screen readers and selection calm). */
export function setText(element, text) {
  const value = String(text);
  if (element.textContent !== value) element.textContent = value;
}

export function byTestId(root, testId) {
  return root.querySelector(`[data-testid="${testId}"]`);
}

/** The connection indicator in the top bar. */
export function showConnection(state, detail = "") {
  const label = document.getElementById("connection");
  label.dataset.state = state;
  label.closest(".connection").dataset.state = state;
  setText(label, state);
  setText(document.getElementById("connection-detail"), detail ? `(${detail})` : "");
}

/** The document's title: what the page shows, then the product. */
export function setTitle(title) {
  document.title = title ? `${title} · stratexec` : "stratexec";
}

/** Replace the main area's content and set the document title. */
export function mount(title, ...children) {
  setTitle(title);
  const main = document.getElementById("main");
  main.replaceChildren(...children);
  return main;
}

export function setNav(...children) {
  document.getElementById("topbar-nav").replaceChildren(...children);
}

/** Tell the user to open the link the server printed: the API answered 401, or (`why` is
 * "refused") the link opened had a token the server does not know or has revoked. */
export function showSignIn(why = "missing") {
  const example = `${window.location.origin}/?token=…`;
  const refused = why === "refused";
  showConnection("disconnected", "not signed in");
  mount(refused ? "Sign-in link refused" : "Sign in",
    h("section", { class: "card notice notice-error", role: "alert",
      dataset: { testid: "signin", why } },
      h("h1", {}, refused ? "This sign-in link does not work" : "Not signed in"),
      refused ? h("p", {}, "Its token is unknown to this server, or it has been revoked.")
        : null,
      h("p", {}, "This dashboard needs the link that ", h("code", {}, "stratexec serve"),
        " printed when it started. Open that link (it looks like ",
        h("code", {}, example), ") in this browser; it signs you in and brings you back here."),
      h("p", { class: "muted" }, "The server prints the same link at every start. A token ",
        "can also be made with ", h("code", {}, "stratexec token create"), ".")));
}

export function showProblem(title, message) {
  mount(title,
    h("section", { class: "card notice notice-error", role: "alert" },
      h("h1", {}, title), h("p", {}, message),
      h("p", {}, h("a", { href: "/" }, "Back to the dashboard"))));
}
