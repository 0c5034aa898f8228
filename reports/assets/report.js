// mqbench report.html / compare.html: draws the inlined charts with uPlot.
// The data comes from reports/html.go (already downsampled with LTTB); the
// phases, saves and actions are drawn by a small uPlot plugin, like the PNGs.
(function () {
	"use strict";
	var errors = window.__errors || [];
	var status = document.getElementById("mqbench-status");
	var rendered = 0;

	function setStatus() {
		if (errors.length) {
			status.textContent = "errors " + errors.length + ": " + errors.join(" | ");
			status.setAttribute("data-state", "error");
			return;
		}
		status.textContent = "charts-ok " + rendered;
		status.setAttribute("data-state", "ok");
	}

	// Formatters. They mirror reports.HumanBytes, groupInt and ninesLabel;
	// checkFormats compares them with the Go outputs inlined in the page.
	function humanBytes(v) {
		if (v >= 1e9) { return (v / 1e9).toFixed(2) + " GB"; }
		if (v >= 1e6) { return (v / 1e6).toFixed(2) + " MB"; }
		if (v >= 1e3) { return (v / 1e3).toFixed(1) + " kB"; }
		return v.toFixed(0) + " B";
	}
	function groupInt(v) {
		var s = String(Math.abs(Math.trunc(v))), out = "";
		while (s.length > 3) { out = "," + s.slice(-3) + out; s = s.slice(0, -3); }
		return (v < 0 ? "-" : "") + s + out;
	}
	function ninesLabel(x) {
		if (x <= 0) { return "0"; }
		return (100 * (1 - Math.pow(10, -x))).toFixed(Math.max(0, Math.floor(x) - 2));
	}
	function percentile(x) {
		return (100 * (1 - Math.pow(10, -x))).toFixed(Math.max(1, Math.floor(x) + 1)) + " %";
	}
	function millis(v) {
		if (v >= 1000) { return groupInt(Math.round(v)) + " ms"; }
		return Number(v.toPrecision(3)) + " ms";
	}
	var formatters = { bytes: humanBytes, count: groupInt, nines: ninesLabel };

	function checkFormats(samples) {
		Object.keys(samples || {}).forEach(function (k) {
			samples[k].forEach(function (s) {
				var got = formatters[k](s[0]);
				if (got !== s[1]) {
					errors.push("format " + k + "(" + s[0] + ") = " + got + ", Go says " + s[1]);
				}
			});
		});
	}

	// Axis tick labels and hover values, by axis kind.
	function tickFmt(kind) {
		switch (kind) {
		case "bytes": return humanBytes;
		case "count": return function (v) { return v === Math.trunc(v) ? groupInt(v) : String(v); };
		case "nines": return ninesLabel;
		case "ms-log": return function (v) {
			var l = Math.log10(v);
			return Math.abs(l - Math.round(l)) < 1e-9 ? (v >= 1 ? groupInt(v) : String(Number(v.toPrecision(1)))) : "";
		};
		}
		return function (v) { return String(Number(v.toFixed(3))); };
	}
	function hoverFmt(kind) {
		switch (kind) {
		case "bytes": return function (v) { return humanBytes(v) + " (" + groupInt(v) + " B)"; };
		case "count": return groupInt;
		case "nines": return percentile;
		case "ms-log": return millis;
		}
		return function (v) { return v.toFixed(3) + " s"; };
	}

	// marksPlugin draws the run's phases as strips along the top, shades the
	// drain, draws a labelled vertical line per action and a tick per save.
	function marksPlugin(m) {
		var px = uPlot.pxRatio;
		function xpos(u, v) { return u.valToPos(v, "x", true); }
		function clip(u, x) { return Math.max(u.bbox.left, Math.min(u.bbox.left + u.bbox.width, x)); }
		return {
			hooks: {
				drawClear: [function (u) {
					var ctx = u.ctx, b = u.bbox;
					ctx.save();
					m.bands.forEach(function (bd) {
						if (bd.label !== "drain") { return; }
						var x0 = clip(u, xpos(u, bd.from)), x1 = clip(u, xpos(u, bd.to));
						ctx.fillStyle = m.drainTint;
						ctx.fillRect(x0, b.top, x1 - x0, b.height);
					});
					ctx.restore();
				}],
				draw: [function (u) {
					var ctx = u.ctx, b = u.bbox, rowH = 20 * px, pad = 5 * px;
					ctx.save();
					ctx.font = (13 * px) + "px system-ui, sans-serif";
					ctx.textBaseline = "middle";
					m.bands.forEach(function (bd) {
						var top = b.top + bd.row * rowH;
						var x0 = clip(u, xpos(u, bd.from)), x1 = clip(u, xpos(u, bd.to));
						if (x1 <= x0) { return; }
						ctx.fillStyle = bd.color;
						ctx.fillRect(x0, top, x1 - x0, rowH - px);
						ctx.fillStyle = "#000";
						var w = ctx.measureText(bd.label).width;
						if (x1 - x0 >= w + 2 * pad) {
							ctx.textAlign = "left";
							ctx.fillText(bd.label, x0 + pad, top + rowH / 2);
						} else if (x1 >= b.left + b.width - px) {
							ctx.textAlign = "right";
							ctx.fillText(bd.label, x1 - pad, top + rowH / 2);
						} else {
							ctx.textAlign = "left"; // a short phase: named just after its strip
							ctx.fillText(bd.label, x1 + pad, top + rowH / 2);
						}
					});
					var below = b.top + 2 * rowH, rowEnd = [];
					m.lines.forEach(function (l) {
						var x = xpos(u, l.x);
						if (x < b.left || x > b.left + b.width) { return; }
						ctx.strokeStyle = l.color;
						ctx.lineWidth = 2 * px;
						ctx.setLineDash(l.dashed ? [8 * px, 4 * px] : []);
						ctx.beginPath();
						ctx.moveTo(x, below);
						ctx.lineTo(x, b.top + b.height);
						ctx.stroke();
						var w = ctx.measureText(l.label).width, left = x + pad;
						if (left + w > b.left + b.width) { left = x - pad - w; }
						var row = 0;
						while (row < rowEnd.length && rowEnd[row] > left) { row++; }
						rowEnd[row] = left + w + pad;
						var y = below + row * rowH + rowH / 2;
						ctx.fillStyle = "rgba(255,255,255,0.85)";
						ctx.fillRect(left - 2 * px, y - rowH / 2 + 2 * px, w + 4 * px, rowH - 4 * px);
						ctx.fillStyle = l.color;
						ctx.textAlign = "left";
						ctx.fillText(l.label, left, y);
					});
					ctx.setLineDash([]);
					ctx.strokeStyle = m.saveColor;
					ctx.lineWidth = 2 * px;
					m.saves.forEach(function (s) {
						var x = xpos(u, s);
						if (x < b.left || x > b.left + b.width) { return; }
						ctx.beginPath();
						ctx.moveTo(x, b.top + b.height);
						ctx.lineTo(x, b.top + b.height - 9 * px);
						ctx.stroke();
					});
					ctx.restore();
				}]
			}
		};
	}

	// lastDefined is the value at idx or, for a series without a sample
	// there, its latest earlier one: series are joined on the union of their
	// x values, and a gauge holds its value until its next sample.
	function lastDefined(data, idx) {
		for (var i = idx; i >= 0; i--) {
			if (data[i] != null) { return data[i]; }
		}
		return null;
	}

	function build(ch, el) {
		var tables = [], extentEnd = 0;
		ch.marks.bands.forEach(function (b) { extentEnd = Math.max(extentEnd, b.to); });
		ch.series.forEach(function (s, i) {
			var xs = s.x.slice(), ys = s.y.slice();
			if (i === 0 && ch.x === "seconds") {
				// The time axis always starts at 0 and covers the phases.
				if (xs[0] > 0) { xs.unshift(0); ys.unshift(null); }
				if (extentEnd > xs[xs.length - 1]) { xs.push(extentEnd); ys.push(null); }
			}
			tables.push([xs, ys]);
		});
		if (!tables.length) {
			el.textContent = "no data recorded for this chart";
			return null;
		}
		var data = uPlot.join(tables, tables.map(function () { return [0, 0]; }));
		var yHover = hoverFmt(ch.y), xHover = hoverFmt(ch.x);
		var xName = { seconds: "time", nines: "percentile", interval: "autosave interval" }[ch.x] || ch.x;
		var series = [{ label: xName, value: function (u, v) { return v == null ? "-" : xHover(v); } }];
		ch.series.forEach(function (s, i) {
			var o = {
				label: s.label, stroke: s.color, width: s.width, spanGaps: true,
				value: function (u, v, si, idx) {
					var d = v == null && idx != null ? lastDefined(u.data[i + 1], idx) : v;
					return d == null ? "-" : yHover(d);
				}
			};
			if (s.dash) { o.dash = s.dash; }
			if (s.kind === "step") { o.paths = uPlot.paths.stepped({ align: 1 }); }
			if (s.kind === "points") {
				o.paths = function () { return null; };
				o.points = { show: true, space: 0, size: 9, fill: s.color, stroke: s.color };
			} else {
				o.points = { show: false };
			}
			series.push(o);
		});
		var yScale = { auto: true };
		if (ch.y === "ms-log") {
			yScale.distr = 3;
			yScale.log = 10;
		} else {
			yScale.range = function (u, lo, hi) { return [0, hi > 0 ? hi * (ch.x === "seconds" ? 1.18 : 1.05) : 1]; };
		}
		var xAxis = { label: ch.xLabel, values: function (u, splits) { return splits.map(tickFmt(ch.x)); } };
		if (ch.x === "nines") {
			xAxis.splits = function (u, ai, lo, hi) {
				var out = [];
				for (var v = Math.ceil(lo); v <= hi + 1e-9; v++) { out.push(v); }
				return out;
			};
		}
		// A log axis keeps only its decades: a grid line at every 2..9 hides the data.
		var decades = ch.y !== "ms-log" ? undefined : function (u, splits) {
			return splits.map(function (v) { return Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9 ? v : null; });
		};
		var yAxis = {
			label: ch.yLabel,
			values: function (u, splits) { return splits.map(tickFmt(ch.y)); },
			size: function (u, values) {
				var n = 0;
				(values || []).forEach(function (s) { n = Math.max(n, String(s).length); });
				return Math.max(50, n * 9 + 20);
			}
		};
		if (decades) {
			yAxis.filter = decades;
			yAxis.grid = { filter: decades };
			yAxis.ticks = { filter: decades };
		}
		var opts = {
			width: Math.max(320, el.clientWidth),
			height: 460,
			scales: { x: { time: false }, y: yScale },
			axes: [xAxis, yAxis],
			series: series,
			cursor: { drag: { x: true, y: false } },
			legend: { live: true },
			plugins: ch.x === "seconds" ? [marksPlugin(ch.marks)] : []
		};
		var u = new uPlot(opts, data, el);
		window.addEventListener("resize", function () {
			u.setSize({ width: Math.max(320, el.clientWidth), height: 460 });
		});
		return u;
	}

	try {
		var page = JSON.parse(document.getElementById("mqbench-data").textContent);
		checkFormats(page.formatSamples);
		var plots = {};
		page.charts.forEach(function (ch) { plots[ch.id] = ch; });
		document.querySelectorAll("[data-chart]").forEach(function (el) {
			var ch = plots[el.getAttribute("data-chart")];
			if (!ch) {
				errors.push("no data for chart " + el.getAttribute("data-chart"));
				return;
			}
			if (!build(ch, el)) {
				return; // a chart without data says so in place of the plot
			}
			var c = el.querySelector("canvas");
			if (c && c.width > 0 && c.height > 0) {
				rendered++;
			} else {
				errors.push("chart " + ch.id + " drew no canvas");
			}
		});
	} catch (e) {
		errors.push("uncaught: " + (e && e.stack ? e.stack : e));
	}
	setStatus();
	// Errors after load (a resize, a hover) still show up.
	window.addEventListener("error", function () { setTimeout(setStatus, 0); });
})();
