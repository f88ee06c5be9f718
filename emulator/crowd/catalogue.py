"""The synthetic shop of the find_items scenario: query images, products, their true order.

:func:`build_catalogue` is a pure function of (scenario name, seed, catalogue settings):

- N query images, each showing an object: a category (mug, lamp, ...), a colour and a
  pattern. Image ``img-01`` is a "photo" of it;
- for each image, K candidate products in true relevance order: the true product (same
  category, colour and pattern, drawn as a shop picture), then ones that share less and less
  with it (another pattern, another colour, then another category). The first M of them
  *match* the image (a right find); the rest are plausible but wrong;
- junk products of categories no image shows (tyres, staplers, ...).

Product ids are opaque hex (derived from the seed), so a link does not tell the requester
what it shows; the simulated workers know the truth and read the id from the URL path
(``/_emulator/catalogue/products/<id>.jpg``) without downloading anything. The pictures are
drawn with Pillow on demand (:func:`render_image`, :func:`render_product`): small JPEGs, the
same bytes for the same seed.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from emulator.crowd.find_items_scenario import MAX_CANDIDATES, CatalogueSettings
from emulator.crowd.photos import _font

SIZE = 256
CATALOGUE_PREFIX = "/_emulator/catalogue"
_URL_PATH = re.compile(r"^/_emulator/catalogue/(images|products)/([A-Za-z0-9_-]+)\.jpg$")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "blue": (40, 80, 200),
    "green": (40, 150, 60),
    "yellow": (230, 200, 40),
    "purple": (130, 60, 170),
    "orange": (235, 130, 30),
    "black": (35, 35, 35),
    "white": (235, 235, 230),
    "pink": (235, 130, 170),
    "teal": (30, 150, 150),
}
PATTERNS = ("plain", "striped", "dotted", "checked")

#: A shape in unit coordinates (0..1 of the drawing box): (primitive, coordinates).
Shape = tuple[tuple[str, tuple[float, ...]], ...]

#: What query images show (each image gets one category; repeats only past 12 images).
IMAGE_CATEGORIES: dict[str, Shape] = {
    "mug": (("rect", (0.22, 0.25, 0.68, 0.85)), ("ring", (0.58, 0.38, 0.86, 0.70))),
    "t-shirt": (("poly", (0.3, 0.15, 0.7, 0.15, 0.95, 0.35, 0.82, 0.48, 0.72, 0.4, 0.72, 0.9, 0.28, 0.9,
                          0.28, 0.4, 0.18, 0.48, 0.05, 0.35)),),
    "lamp": (("poly", (0.3, 0.12, 0.7, 0.12, 0.85, 0.45, 0.15, 0.45)), ("rect", (0.46, 0.45, 0.54, 0.82)),
             ("rect", (0.28, 0.82, 0.72, 0.9))),
    "sneaker": (("poly", (0.08, 0.55, 0.45, 0.5, 0.6, 0.3, 0.75, 0.32, 0.92, 0.6, 0.92, 0.75, 0.08, 0.75)),),
    "backpack": (("rect", (0.25, 0.2, 0.75, 0.9)), ("ring", (0.38, 0.06, 0.62, 0.3)),
                 ("rect", (0.33, 0.55, 0.67, 0.8))),
    "chair": (("rect", (0.3, 0.1, 0.38, 0.9)), ("rect", (0.3, 0.5, 0.75, 0.58)), ("rect", (0.67, 0.58, 0.75, 0.9)),
              ("rect", (0.3, 0.1, 0.7, 0.3))),
    "watch": (("ellipse", (0.28, 0.3, 0.72, 0.7)), ("rect", (0.4, 0.05, 0.6, 0.32)), ("rect", (0.4, 0.68, 0.6, 0.95))),
    "vase": (("poly", (0.4, 0.1, 0.6, 0.1, 0.58, 0.3, 0.78, 0.6, 0.65, 0.92, 0.35, 0.92, 0.22, 0.6, 0.42, 0.3)),),
    "bottle": (("rect", (0.43, 0.06, 0.57, 0.3)), ("poly", (0.43, 0.3, 0.57, 0.3, 0.68, 0.42, 0.68, 0.94, 0.32, 0.94,
                                                             0.32, 0.42)),),
    "hat": (("ellipse", (0.08, 0.6, 0.92, 0.82)), ("rect", (0.28, 0.25, 0.72, 0.72))),
    "umbrella": (("pie", (0.08, 0.15, 0.92, 0.85)), ("rect", (0.48, 0.5, 0.52, 0.9))),
    "teapot": (("ellipse", (0.22, 0.3, 0.78, 0.85)), ("poly", (0.75, 0.5, 0.95, 0.3, 0.97, 0.36, 0.8, 0.65)),
               ("ring", (0.05, 0.42, 0.3, 0.7)), ("ellipse", (0.42, 0.2, 0.58, 0.34))),
}
#: What junk products are (no query image shows any of these).
JUNK_CATEGORIES: dict[str, Shape] = {
    "tyre": (("ring", (0.15, 0.15, 0.85, 0.85)),),
    "stapler": (("poly", (0.1, 0.55, 0.85, 0.45, 0.9, 0.55, 0.1, 0.7)), ("rect", (0.1, 0.7, 0.9, 0.8))),
    "socket": (("rect", (0.2, 0.2, 0.8, 0.8)), ("ellipse", (0.3, 0.42, 0.42, 0.58)),
               ("ellipse", (0.58, 0.42, 0.7, 0.58))),
    "brick": (("rect", (0.1, 0.35, 0.9, 0.7)),),
    "sponge": (("rect", (0.2, 0.3, 0.8, 0.75)),),
    "bucket": (("poly", (0.2, 0.25, 0.8, 0.25, 0.7, 0.9, 0.3, 0.9)), ("ring", (0.25, 0.05, 0.75, 0.45))),
    "padlock": (("rect", (0.25, 0.45, 0.75, 0.9)), ("ring", (0.32, 0.12, 0.68, 0.6))),
    "ladder": (("rect", (0.3, 0.05, 0.36, 0.95)), ("rect", (0.64, 0.05, 0.7, 0.95)), ("rect", (0.3, 0.25, 0.7, 0.3)),
               ("rect", (0.3, 0.5, 0.7, 0.55)), ("rect", (0.3, 0.75, 0.7, 0.8))),
}
BRANDS = ("Norda", "Kettle&Co", "Lumo", "Brisk", "Oakline", "Pico", "Tundra", "Vela", "Zest", "Mora")


# ---------------------------------------------------------------- model


@dataclass(frozen=True)
class Product:
    """A product of the shop. ``image_id``/``position`` place it among an image's candidates
    (0 = the true product); both are None for a junk product."""

    id: str
    name: str
    category: str
    colour: str
    pattern: str
    price: str
    image_id: str | None
    position: int | None

    @property
    def junk(self) -> bool:
        return self.image_id is None


@dataclass(frozen=True)
class QueryImage:
    """A picture a finder gets; ``candidates`` are product ids in true relevance order."""

    id: str
    category: str
    colour: str
    pattern: str
    candidates: tuple[str, ...]
    matching: int  # the first ``matching`` candidates are right finds

    @property
    def matching_ids(self) -> tuple[str, ...]:
        return self.candidates[: self.matching]

    @property
    def wrong_ids(self) -> tuple[str, ...]:
        """Plausible but wrong candidates (same kind of thing, not the product)."""
        return self.candidates[self.matching:]


@dataclass(frozen=True)
class Catalogue:
    """Every query image and product of one (scenario, seed)."""

    images: dict[str, QueryImage]
    products: dict[str, Product]
    junk: tuple[str, ...]
    candidates: int

    def matches(self, image_id: str | None, product_id: str | None) -> bool:
        """The product is a right find for the image (one of its top-M candidates)."""
        image = self.images.get(image_id or "")
        return image is not None and product_id in image.matching_ids

    def relevance(self, image_id: str | None, product_id: str | None) -> int:
        """The product's place in the image's true order: 0 (the true product) .. K-1, and K
        for anything else (junk, another image's product, an unknown link)."""
        image = self.images.get(image_id or "")
        if image is None or product_id not in image.candidates:
            return self.candidates
        return image.candidates.index(product_id)

    def to_truth(self, base_url: str) -> dict[str, Any]:
        """The catalogue as plain JSON for ``/_emulator/truth``."""
        return {
            "candidates_per_image": self.candidates,
            "images": {i.id: {"id": i.id, "url": image_url(base_url, i.id), "category": i.category,
                              "colour": i.colour, "pattern": i.pattern, "candidates": list(i.candidates),
                              "matching": list(i.matching_ids)} for i in self.images.values()},
            "products": {p.id: {"id": p.id, "url": product_url(base_url, p.id), "name": p.name,
                                "category": p.category, "colour": p.colour, "pattern": p.pattern, "price": p.price,
                                "image_id": p.image_id, "position": p.position, "junk": p.junk}
                         for p in self.products.values()},
            "junk": list(self.junk),
        }


def _product_id(scenario_name: str, seed: int, *parts: object) -> str:
    text = ":".join(str(p) for p in (scenario_name, seed, "product", *parts))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _other(rng: random.Random, options: list[str], not_this: str) -> str:
    return rng.choice([o for o in options if o != not_this])


def _name(colour: str, pattern: str, category: str, rng: random.Random) -> str:
    look = "" if pattern == "plain" else f"{pattern} "
    return f"{rng.choice(BRANDS)} {colour} {look}{category}"


def _price(rng: random.Random) -> str:
    return f"{rng.randint(5, 99)}.{rng.choice(('00', '50', '90', '99'))}"


def _variant(position: int, image: tuple[str, str, str], rng: random.Random) -> tuple[str, str, str]:
    """(category, colour, pattern) of the candidate at ``position``: each step shares less with
    the image (0: all three; then another pattern; another colour; both; then another
    category, keeping colour and pattern; keeping colour; keeping pattern; nothing)."""
    category, colour, pattern = image
    other_cat = _other(rng, list(IMAGE_CATEGORIES), category)
    other_col = _other(rng, list(COLOURS), colour)
    other_pat = _other(rng, list(PATTERNS), pattern)
    recipes = [
        (category, colour, pattern),
        (category, colour, other_pat),
        (category, other_col, pattern),
        (category, other_col, other_pat),
        (other_cat, colour, pattern),
        (other_cat, colour, other_pat),
        (other_cat, other_col, pattern),
        (other_cat, other_col, other_pat),
    ]
    assert len(recipes) == MAX_CANDIDATES
    return recipes[position]


def image_ids(count: int) -> list[str]:
    """The query images' ids: ``img-01``, ``img-02``, ..."""
    width = max(2, len(str(count)))
    return [f"img-{i + 1:0{width}d}" for i in range(count)]


def build_catalogue(scenario_name: str, seed: int, settings: CatalogueSettings) -> Catalogue:
    """The shop of one (scenario, seed): a pure function (see the module docstring)."""
    rng = random.Random(f"{seed}:catalogue")
    categories = list(IMAGE_CATEGORIES)
    rng.shuffle(categories)
    images: dict[str, QueryImage] = {}
    products: dict[str, Product] = {}
    for n, image_id in enumerate(image_ids(settings.images)):
        look = (categories[n % len(categories)], rng.choice(list(COLOURS)), rng.choice(PATTERNS))
        own = random.Random(f"{seed}:catalogue:{image_id}")
        candidates = []
        for position in range(settings.candidates):
            category, colour, pattern = _variant(position, look, own)
            pid = _product_id(scenario_name, seed, image_id, position)
            products[pid] = Product(pid, _name(colour, pattern, category, own), category, colour, pattern,
                                    _price(own), image_id, position)
            candidates.append(pid)
        images[image_id] = QueryImage(image_id, *look, candidates=tuple(candidates), matching=settings.matching)
    junk_rng = random.Random(f"{seed}:catalogue:junk")
    junk_categories = list(JUNK_CATEGORIES)
    junk = []
    for j in range(settings.junk_products):
        category = junk_categories[j % len(junk_categories)]
        colour, pattern = junk_rng.choice(list(COLOURS)), junk_rng.choice(PATTERNS)
        pid = _product_id(scenario_name, seed, "junk", j)
        products[pid] = Product(pid, _name(colour, pattern, category, junk_rng), category, colour, pattern,
                                _price(junk_rng), None, None)
        junk.append(pid)
    return Catalogue(images=images, products=products, junk=tuple(junk), candidates=settings.candidates)


# ---------------------------------------------------------------- URLs


def image_url(base_url: str, image_id: str) -> str:
    return f"{base_url.rstrip('/')}{CATALOGUE_PREFIX}/images/{image_id}.jpg"


def product_url(base_url: str, product_id: str) -> str:
    return f"{base_url.rstrip('/')}{CATALOGUE_PREFIX}/products/{product_id}.jpg"


def parse_catalogue_url(url: object) -> tuple[str, str] | None:
    """``("images"|"products", id)`` from a catalogue link; host, port, query are ignored (a
    link minted before a restart on another port still names the same thing). None for
    anything else."""
    if not isinstance(url, str):
        return None
    try:
        path = urllib.parse.urlsplit(url.strip()).path
    except ValueError:
        return None
    found = _URL_PATH.match(path)
    return (found.group(1), found.group(2)) if found else None


def image_of_url(url: object) -> str | None:
    parsed = parse_catalogue_url(url)
    return parsed[1] if parsed and parsed[0] == "images" else None


def product_of_url(url: object) -> str | None:
    parsed = parse_catalogue_url(url)
    return parsed[1] if parsed and parsed[0] == "products" else None


# ---------------------------------------------------------------- drawing


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    if sum(colour) > 600:  # white things get grey patterns
        factor = 0.7
    r, g, b = (max(0, min(255, int(c * factor))) for c in colour)
    return r, g, b


def _shape_mask(shape: Shape, box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(mask)
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0

    def pt(i: int, coords: tuple[float, ...]) -> tuple[float, float]:
        return x0 + coords[i] * w, y0 + coords[i + 1] * h

    for kind, coords in shape:
        if kind == "poly":
            draw.polygon([pt(i, coords) for i in range(0, len(coords), 2)], fill=255)
            continue
        rect = (*pt(0, coords), *pt(2, coords))
        if kind == "rect":
            draw.rectangle(rect, fill=255)
        elif kind == "ellipse":
            draw.ellipse(rect, fill=255)
        elif kind == "ring":
            draw.ellipse(rect, outline=255, width=max(4, int(w * 0.06)))
        elif kind == "pie":
            draw.pieslice(rect, 180, 360, fill=255)
        else:  # pragma: no cover - a typo in the tables above
            raise ValueError(f"unknown primitive {kind!r}")
    return mask


def _fill(colour: str, pattern: str, rng: random.Random) -> Image.Image:
    base = COLOURS[colour]
    layer = Image.new("RGB", (SIZE, SIZE), base)
    draw = ImageDraw.Draw(layer)
    ink = _shade(base, 0.55)
    step = rng.randint(14, 20)
    if pattern == "striped":
        for x in range(-SIZE, SIZE * 2, step):
            draw.line([(x, 0), (x + SIZE, SIZE)], fill=ink, width=max(3, step // 3))
    elif pattern == "dotted":
        for y in range(step // 2, SIZE, step):
            for x in range(step // 2, SIZE, step):
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=ink)
    elif pattern == "checked":
        for y in range(0, SIZE, step):
            for x in range(0, SIZE, step):
                if (x // step + y // step) % 2:
                    draw.rectangle([x, y, x + step - 1, y + step - 1], fill=ink)
    return layer


def _object(canvas: Image.Image, shape: Shape, colour: str, pattern: str, box: tuple[int, int, int, int],
            rng: random.Random) -> None:
    mask = _shape_mask(shape, box)
    shadow = Image.new("RGB", (SIZE, SIZE), (60, 60, 60))
    canvas.paste(shadow, (4, 5), mask)  # a drop shadow, offset
    canvas.paste(_fill(colour, pattern, rng), (0, 0), mask)


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _shape_of(category: str) -> Shape:
    return IMAGE_CATEGORIES.get(category) or JUNK_CATEGORIES[category]


def render_image(image: QueryImage, *, seed: int | str = 0) -> bytes:
    """A "photo" of the image's object: a coloured room, the object large, a caption."""
    rng = random.Random(f"{seed}:draw:{image.id}")
    wall = (rng.randint(150, 210), rng.randint(150, 200), rng.randint(140, 190))
    canvas = Image.new("RGB", (SIZE, SIZE), wall)
    draw = ImageDraw.Draw(canvas)
    floor = rng.randint(170, 200)
    draw.rectangle([0, floor, SIZE, SIZE], fill=(120, 95, 70))
    margin = rng.randint(18, 34)
    _object(canvas, _shape_of(image.category), image.colour, image.pattern,
            (margin, margin - 6, SIZE - margin, SIZE - margin + 10), rng)
    draw.text((6, SIZE - 18), image.id, font=_font(12), fill=(250, 250, 250))
    return _jpeg(canvas)


def render_product(product: Product, *, seed: int | str = 0) -> bytes:
    """A shop picture of the product: white background, the object smaller, name and price."""
    rng = random.Random(f"{seed}:draw:{product.id}")
    canvas = Image.new("RGB", (SIZE, SIZE), (250, 250, 248))
    draw = ImageDraw.Draw(canvas)
    left = rng.randint(40, 64)
    _object(canvas, _shape_of(product.category), product.colour, product.pattern,
            (left, 30, left + 150, 180), rng)
    draw.rectangle([0, 196, SIZE, SIZE], fill=(240, 236, 228))
    title = product.name if len(product.name) <= 30 else product.name[:29] + "…"
    draw.text((8, 202), title, font=_font(14), fill=(30, 30, 30))
    draw.text((8, 226), f"$ {product.price}", font=_font(16), fill=(170, 30, 30))
    return _jpeg(canvas)


def renderer(catalogue: Catalogue, seed: int) -> Callable[[str, str], bytes | None]:
    """``render(kind, id)`` for the HTTP route: JPEG bytes of an image or product, None if the
    catalogue has no such thing."""

    def render(kind: str, object_id: str) -> bytes | None:
        if kind == "images" and object_id in catalogue.images:
            return render_image(catalogue.images[object_id], seed=seed)
        if kind == "products" and object_id in catalogue.products:
            return render_product(catalogue.products[object_id], seed=seed)
        return None

    return render
