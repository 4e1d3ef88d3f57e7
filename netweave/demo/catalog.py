"""What the demo's small businesses are like: kinds, names, offers, customers and needs.

Written by hand so the demo reads like a real book of small-business accounts.
Placeholders: {surname}, {first}, {place} (a neighbourhood of the business's city).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    names: tuple[str, ...]
    offers: tuple[str, ...]
    customers: tuple[str, ...]
    needs: tuple[str, ...]
    employees: tuple[int, int]


def _kind(name, names, offers, customers, needs, employees=(2, 15)) -> Kind:  # noqa: ANN001 - table helper
    return Kind(name, tuple(names), tuple(offers), tuple(customers), tuple(needs), employees)


KINDS: tuple[Kind, ...] = (
    # Weddings and events
    _kind(
        "Wedding Venue",
        ["The {place} Barn", "{surname} Estate", "{place} Pavilion", "The Grand {place} Ballroom"],
        [
            "Historic event space for weddings and receptions up to 220 guests, on-site coordinator",
            "wedding + event venue - ceremonies and receptions, ~80 weddings/yr, in-house bar",
        ],
        ["engaged couples planning a wedding", "couples, corporate party planners"],
        ["preferred vendor list: florists, photographers, caterers, DJs", "wants more off-season bookings"],
        (6, 40),
    ),
    _kind(
        "Florist",
        ["{surname} Flowers", "Petal & Stem {place}", "{place} Floral Studio", "Bloom on {place}"],
        [
            "Custom floral design for weddings, funerals and corporate events; daily delivery",
            "wedding + event flowers, weekly office arrangements. owner {first} does the big installs personally",
        ],
        ["brides and grooms, event planners, funeral homes, offices", "engaged couples and event planners"],
        ["referrals from wedding venues and planners", "looking for venues that will put them on a preferred list"],
        (2, 12),
    ),
    _kind(
        "Wedding Photographer",
        ["{first} {surname} Photography", "{place} Light Studio", "Golden Hour Photo Co."],
        [
            "Wedding and engagement photography, documentary style, albums and prints",
            "shoots ~30 weddings a season, also engagement + family sessions",
        ],
        ["engaged couples", "couples getting married, families"],
        ["introductions to venues and planners", "wants referrals from florists and bridal shops"],
        (1, 5),
    ),
    _kind(
        "Caterer",
        ["{surname} Catering", "{place} Kitchen & Catering", "Fork & Table Catering"],
        [
            "Full-service catering for weddings, corporate lunches and private parties",
            "catering - plated + buffet, up to 400 guests. corporate drop-off lunches weekdays",
        ],
        ["couples, offices, event planners", "companies ordering team lunches, wedding couples"],
        ["venue partnerships", "more corporate lunch accounts"],
        (8, 45),
    ),
    _kind(
        "Wedding Planner",
        ["{first} & Co. Events", "{place} Wedding Planning", "Something Blue Planning"],
        [
            "Full and partial wedding planning, day-of coordination, vendor management",
            "day-of coordination + full planning pkgs; books ~25 weddings/yr",
        ],
        ["engaged couples with busy schedules"],
        ["reliable vendors to recommend: florists, caterers, photographers, rentals"],
        (1, 6),
    ),
    _kind(
        "Bakery",
        ["{surname}'s Bakery", "{place} Bakehouse", "Sweet {place} Cakes"],
        [
            "Scratch bakery: bread, pastries and custom wedding and celebration cakes",
            "custom cakes (weddings, bdays), wholesale bread to a few cafes",
        ],
        ["neighbourhood regulars, couples ordering wedding cakes, cafes", "walk-in customers and event hosts"],
        ["wedding cake referrals from venues and planners", "more wholesale cafe accounts"],
        (4, 20),
    ),
    _kind(
        "DJ & Entertainment",
        ["{place} Sound DJs", "{first} {surname} Entertainment", "Northern Beat DJ Co."],
        [
            "DJ, MC and lighting for weddings, school dances and corporate parties",
            "wedding DJs + uplighting, photo booth add-on",
        ],
        ["couples, schools, companies planning parties"],
        ["venue referrals", "planners who need a dependable DJ"],
        (2, 10),
    ),
    _kind(
        "Bridal Shop",
        ["{place} Bridal", "{surname} Bridal Boutique", "Veil & Lace"],
        [
            "Bridal gowns, bridesmaid dresses and alterations by appointment",
            "bridal boutique, appts only. in-house alterations",
        ],
        ["brides-to-be and their bridal parties"],
        ["partnerships with photographers and planners", "referrals from venues"],
        (3, 12),
    ),
    _kind(
        "Event Rental",
        ["{place} Party Rentals", "{surname} Tent & Event", "Tablescape Rentals"],
        [
            "Tents, tables, chairs, linens and dance floors for weddings and corporate events",
            "rentals: tents/tables/chairs/linens, delivery + setup",
        ],
        ["event planners, caterers, couples hosting outdoor weddings"],
        ["caterers and planners who send clients their way"],
        (5, 30),
    ),
    _kind(
        "Hair & Makeup Studio",
        ["{first} Beauty Studio", "{place} Glam", "Studio {surname}"],
        [
            "Bridal hair and makeup, on-location for wedding parties; salon services",
            "on-site bridal hair + makeup teams; regular salon clients too",
        ],
        ["brides and bridal parties, salon regulars"],
        ["referrals from bridal shops and photographers"],
        (2, 10),
    ),
    # Home buying and home services
    _kind(
        "Real Estate Agent",
        ["{first} {surname} Realty", "{place} Home Team", "{surname} Real Estate Group"],
        [
            "Residential real estate: buyer and seller representation, first-time buyers",
            "realtor - mostly first-time buyers + downsizers. ~40 closings last yr",
        ],
        ["home buyers and sellers, first-time buyers, relocating families"],
        ["trusted lenders, inspectors and movers to refer clients to", "more seller leads"],
        (1, 12),
    ),
    _kind(
        "Mortgage Broker",
        ["{place} Home Loans", "{surname} Mortgage", "Keystone Lending"],
        [
            "Mortgage brokerage: purchase loans, refinancing, first-time buyer programs",
            "mortgage broker. FHA/VA/conventional, fast pre-approvals",
        ],
        ["home buyers, homeowners refinancing"],
        ["referral relationships with real estate agents", "realtors who need quick pre-approvals"],
        (2, 15),
    ),
    _kind(
        "Home Inspector",
        ["{surname} Home Inspections", "{place} Inspection Services", "Clear View Inspections"],
        [
            "Pre-purchase home inspections, radon testing and sewer scopes",
            "home inspections w/ same-day reports, radon + sewer scope",
        ],
        ["home buyers and their agents"],
        ["realtor referrals"],
        (1, 6),
    ),
    _kind(
        "Title Company",
        ["{place} Title", "{surname} Title & Escrow", "North Star Title"],
        [
            "Title insurance, escrow and closing services for residential and commercial deals",
            "title + escrow, closings. mobile closers avail",
        ],
        ["home buyers, sellers, lenders, real estate agents"],
        ["more agent and lender relationships"],
        (5, 30),
    ),
    _kind(
        "Moving Company",
        ["{surname} Movers", "{place} Moving & Storage", "Two Trucks Moving"],
        [
            "Local and long-distance residential moves, packing and storage",
            "residential + small office moves, packing svc, climate storage",
        ],
        ["families moving house, small offices relocating"],
        ["realtor referrals", "partnerships with property managers"],
        (6, 35),
    ),
    _kind(
        "Interior Designer",
        ["{first} {surname} Interiors", "{place} Design Studio", "Studio Hearth"],
        [
            "Residential interior design, remodel planning and home staging",
            "interior design + staging for listings. works w/ contractors on remodels",
        ],
        ["homeowners remodelling, sellers staging homes"],
        ["contractor partners", "agents who need staging for listings"],
        (1, 6),
    ),
    _kind(
        "General Contractor",
        ["{surname} Construction", "{place} Build & Remodel", "Sturdy Oak Builders"],
        [
            "Kitchen and bath remodels, additions and basement finishing",
            "remodeling GC - kitchens/baths/basements. licensed + insured",
        ],
        ["homeowners planning a remodel"],
        ["designer and architect referrals", "trade partners: electricians, plumbers"],
        (5, 40),
    ),
    _kind(
        "Plumber",
        ["{surname} Plumbing", "{place} Plumbing & Drain", "Reliable Pipe Co."],
        [
            "Residential plumbing repair, water heaters and drain cleaning, 24/7 emergencies",
            "plumbing svc + repair, water heater installs, emergency calls",
        ],
        ["homeowners, landlords, property managers"],
        ["contractor and property manager relationships"],
        (3, 25),
    ),
    _kind(
        "Electrician",
        ["{surname} Electric", "{place} Electrical Services", "Bright Line Electric"],
        [
            "Residential and light commercial electrical work, panel upgrades, EV chargers",
            "electrician - panel upgrades, EV charger installs, remodel wiring",
        ],
        ["homeowners, contractors, small businesses"],
        ["general contractor partners", "EV dealership referrals"],
        (3, 25),
    ),
    _kind(
        "Roofing Contractor",
        ["{surname} Roofing", "{place} Roof & Exteriors", "Summit Roofing"],
        [
            "Roof replacement and repair, storm damage and insurance claims help",
            "roofing - replacements, storm damage, gutters",
        ],
        ["homeowners, property managers"],
        ["insurance agent and inspector referrals"],
        (6, 40),
    ),
    _kind(
        "Landscaper",
        ["{surname} Landscaping", "{place} Lawn & Garden", "Greenway Landscapes"],
        [
            "Landscape design and installation, lawn care and snow removal",
            "landscaping + lawn maint, snow removal in winter",
        ],
        ["homeowners, HOAs, small commercial properties"],
        ["realtors prepping listings", "property managers"],
        (5, 40),
    ),
    _kind(
        "House Cleaning",
        ["{place} Maids", "{first}'s Cleaning Service", "Sparkle & Shine Cleaning"],
        [
            "Recurring home cleaning, move-in and move-out cleans, deep cleaning",
            "house cleaning - weekly/biweekly, move-out cleans",
        ],
        ["busy households, landlords, people moving"],
        ["movers and realtors to refer move-out cleans"],
        (4, 30),
    ),
    _kind(
        "Pest Control",
        ["{surname} Pest Control", "{place} Pest Solutions", "Guardian Pest"],
        [
            "Residential and commercial pest control, inspections for home sales",
            "pest control, quarterly plans, WDI inspections for closings",
        ],
        ["homeowners, restaurants, property managers"],
        ["inspector and realtor referrals", "restaurant accounts"],
        (3, 20),
    ),
    _kind(
        "Insurance Agency",
        ["{surname} Insurance Agency", "{place} Insurance Group", "Shield Insurance Partners"],
        [
            "Independent agency: home, auto and small-business insurance",
            "indep. insurance agent - home/auto/umbrella + business policies",
        ],
        ["homeowners, drivers, small business owners"],
        ["referrals from lenders, realtors and car dealers"],
        (3, 20),
    ),
    # Small-business services
    _kind(
        "Accounting Firm",
        ["{surname} & Associates CPAs", "{place} Accounting", "Ledgerline CPA"],
        [
            "Tax preparation, accounting and advisory for small businesses and individuals",
            "CPA firm. small biz tax + advisory, some individual returns",
        ],
        ["small business owners, self-employed professionals"],
        ["business lawyer and banker referrals", "more small business clients"],
        (3, 25),
    ),
    _kind(
        "Bookkeeping Service",
        ["{first} Books", "{place} Bookkeeping", "Balanced Books Co."],
        [
            "Monthly bookkeeping, payroll setup and QuickBooks cleanup",
            "bookkeeping for restaurants + trades, QBO cleanup",
        ],
        ["small businesses, restaurants, contractors"],
        ["CPA partners to hand tax work to"],
        (1, 8),
    ),
    _kind(
        "Business Law Firm",
        ["{surname} Law", "{place} Legal", "{surname} & {surname} Attorneys"],
        [
            "Business formation, contracts, leases and employment law for small companies",
            "biz law - LLC formation, contracts, commercial leases",
        ],
        ["founders, small business owners, landlords"],
        ["accountant and banker referrals"],
        (2, 20),
    ),
    _kind(
        "Marketing Agency",
        ["{place} Creative", "{surname} Marketing", "Signal Fire Marketing"],
        [
            "Brand strategy, social media and local SEO for small businesses",
            "marketing agency - social, local SEO, paid ads for local biz",
        ],
        ["restaurants, retailers, service businesses"],
        ["web designers and printers to partner with"],
        (3, 25),
    ),
    _kind(
        "Web Design Studio",
        ["{place} Web Studio", "{first} Digital", "Pixel & Pine"],
        [
            "Websites and online booking for small businesses; hosting and upkeep",
            "builds sites on WordPress/Shopify for local shops, monthly care plans",
        ],
        ["small businesses, restaurants, salons"],
        ["marketing agency partners", "referrals from printers"],
        (1, 10),
    ),
    _kind(
        "IT Services",
        ["{place} IT Support", "{surname} Technology", "Bytewise Managed IT"],
        [
            "Managed IT, computer support and cybersecurity for small offices",
            "MSP - helpdesk, backups, security for 5-50 seat offices",
        ],
        ["small offices: clinics, law firms, accountants"],
        ["referrals from accountants and law firms"],
        (4, 30),
    ),
    _kind(
        "Commercial Printer",
        ["{place} Print Shop", "{surname} Printing", "Inkwell Press"],
        [
            "Business cards, signage, banners and wedding stationery",
            "printing - signage, banners, invitations. fast turnaround",
        ],
        ["small businesses, event planners, couples ordering invitations"],
        ["marketing agency and planner partnerships"],
        (3, 20),
    ),
    _kind(
        "Coworking Space",
        ["{place} Commons", "The Hive {place}", "Workbench Coworking"],
        [
            "Hot desks, private offices and meeting rooms for freelancers and startups",
            "coworking - desks, offices, event space rental evenings",
        ],
        ["freelancers, remote workers, startups"],
        ["service providers to run member workshops", "event hosts for the evenings"],
        (2, 10),
    ),
    _kind(
        "Commercial Cleaning",
        ["{surname} Janitorial", "{place} Commercial Cleaning", "Clean Slate Facility Services"],
        [
            "Nightly office cleaning, floor care and post-construction cleanup",
            "janitorial for offices + clinics, post-construction cleans",
        ],
        ["offices, clinics, property managers"],
        ["contractors and coworking spaces to refer them"],
        (10, 60),
    ),
    # Health and wellness
    _kind(
        "Dental Practice",
        ["{place} Family Dental", "{surname} Dentistry", "Bright Smile Dental"],
        [
            "Family dentistry: cleanings, fillings, crowns and cosmetic whitening",
            "general dentistry, accepting new pts, Saturday hours",
        ],
        ["families, working adults"],
        ["employer wellness partnerships", "referrals from pediatric practices"],
        (6, 25),
    ),
    _kind(
        "Chiropractor",
        ["{place} Chiropractic", "{surname} Chiropractic & Wellness", "Align Spine Center"],
        [
            "Chiropractic care for back pain, sports injuries and auto accident recovery",
            "chiro - sports + auto injury, accepts most insurance",
        ],
        ["people with back pain, athletes, accident patients"],
        ["massage and physical therapy partners", "auto body shop referrals"],
        (2, 10),
    ),
    _kind(
        "Physical Therapy Clinic",
        ["{place} Physical Therapy", "{surname} PT & Rehab", "Motion Rehab"],
        [
            "Physical therapy for injuries, post-surgery rehab and sports performance",
            "PT clinic - post-op rehab, sports, vestibular",
        ],
        ["patients after surgery or injury, athletes"],
        ["gym and chiropractor referrals"],
        (5, 25),
    ),
    _kind(
        "Yoga Studio",
        ["{place} Yoga", "Sun Salutation Studio", "{first}'s Yoga Loft"],
        [
            "Yoga and meditation classes, teacher training and corporate sessions",
            "yoga studio - vinyasa + restorative, prenatal classes",
        ],
        ["adults looking for fitness and stress relief, expecting mothers"],
        ["physical therapists and chiropractors to cross-refer", "corporate wellness clients"],
        (2, 12),
    ),
    _kind(
        "Fitness Gym",
        ["{place} Fitness", "Iron {place} Gym", "{surname} Strength Club"],
        [
            "Gym with personal training, group classes and open gym 24/7",
            "gym - PT, group classes, small group strength",
        ],
        ["adults getting in shape, athletes"],
        ["nutritionist and physical therapy partners", "employer wellness deals"],
        (6, 35),
    ),
    _kind(
        "Massage Therapy",
        ["{place} Massage", "{first} Therapeutic Massage", "Still Waters Massage"],
        [
            "Therapeutic and sports massage, prenatal massage, gift cards",
            "massage - deep tissue + sports, chiro referrals welcome",
        ],
        ["people with muscle pain, athletes, expecting mothers"],
        ["chiropractor and gym referrals"],
        (1, 8),
    ),
    _kind(
        "Nutritionist",
        ["{first} {surname} Nutrition", "{place} Nutrition Coaching", "Whole Plate Nutrition"],
        [
            "Nutrition coaching, meal plans and diabetes nutrition counselling",
            "registered dietitian, 1:1 coaching + group programs",
        ],
        ["adults changing diets, people with diabetes, athletes"],
        ["gym and clinic referrals"],
        (1, 4),
    ),
    _kind(
        "Optometrist",
        ["{place} Eye Care", "{surname} Optometry", "Clear Sight Vision"],
        ["Eye exams, glasses and contact lenses for families", "optometry - exams, frames, contacts. kids exams"],
        ["families, working adults"],
        ["employer vision plan partnerships"],
        (4, 15),
    ),
    # Auto
    _kind(
        "Auto Repair Shop",
        ["{surname} Auto Repair", "{place} Auto Service", "Precision Auto Care"],
        [
            "Car maintenance and repair: brakes, engines, diagnostics, all makes",
            "general auto repair, ASE certified, loaner cars",
        ],
        ["car owners, small fleets"],
        ["insurance agent and dealership referrals"],
        (4, 20),
    ),
    _kind(
        "Car Dealership",
        ["{place} Motors", "{surname} Auto Sales", "Northgate Subaru"],
        ["New and used car sales, financing and trade-ins", "dealership - new/used, financing dept, service bay"],
        ["car buyers"],
        ["insurance partners for new buyers", "detailers and body shops"],
        (20, 90),
    ),
    _kind(
        "Auto Detailing",
        ["{place} Auto Spa", "{first}'s Mobile Detailing", "Gleam Auto Detailing"],
        ["Interior and exterior detailing, ceramic coating, mobile service", "mobile detailing + ceramic coat"],
        ["car owners, dealerships"],
        ["dealership contracts"],
        (1, 8),
    ),
    _kind(
        "Auto Body Shop",
        ["{surname} Collision", "{place} Auto Body", "Restore Collision Center"],
        ["Collision repair, paint and insurance claim handling", "collision + paint, works direct w/ insurers"],
        ["drivers after accidents, insurers"],
        ["insurance agent referrals", "towing partners"],
        (5, 30),
    ),
    # Hospitality
    _kind(
        "Restaurant",
        ["{surname}'s Kitchen", "{place} Bistro", "The {place} Table"],
        [
            "Neighbourhood restaurant with private dining room for rehearsal dinners and parties",
            "restaurant - seasonal menu, private room seats 40",
        ],
        ["locals, families, groups booking private events"],
        ["event referrals: rehearsal dinners, corporate dinners", "local suppliers"],
        (10, 50),
    ),
    _kind(
        "Coffee Shop",
        ["{place} Coffee", "Common Grounds {place}", "{surname} Coffee Roasters"],
        [
            "Espresso bar and roaster; pastries; coffee catering for offices",
            "coffee shop + roastery, office coffee delivery",
        ],
        ["commuters, remote workers, offices"],
        ["wholesale bakery partner", "office accounts"],
        (4, 20),
    ),
    _kind(
        "Brewery",
        ["{place} Brewing", "{surname} Brewing Co.", "Tall Pines Brewery"],
        ["Craft brewery and taproom; private event space", "taproom + event space, food trucks weekends"],
        ["craft beer fans, groups booking events"],
        ["caterers and food trucks", "event bookings"],
        (5, 30),
    ),
    _kind(
        "Boutique Hotel",
        ["The {place} Inn", "Hotel {surname}", "{place} House Hotel"],
        [
            "Boutique hotel with 40 rooms; room blocks for weddings and conferences",
            "boutique hotel, wedding room blocks, small meeting rooms",
        ],
        ["travellers, wedding guests, business visitors"],
        ["wedding venues and planners to send room blocks"],
        (15, 60),
    ),
    # Pets and family
    _kind(
        "Veterinary Clinic",
        ["{place} Animal Hospital", "{surname} Veterinary", "Paws & Claws Vet"],
        ["Veterinary care, vaccines, dental and surgery for cats and dogs", "small animal vet, new clients welcome"],
        ["pet owners"],
        ["groomer and boarding partners"],
        (6, 30),
    ),
    _kind(
        "Dog Groomer",
        ["{place} Grooming", "{first}'s Dog Spa", "Suds & Scissors"],
        ["Dog grooming, baths and nail trims by appointment", "grooming - all breeds, nail trims walk-in"],
        ["dog owners"],
        ["vet and boarding referrals"],
        (1, 8),
    ),
    _kind(
        "Daycare Center",
        ["{place} Early Learning", "Little Acorns {place}", "{surname} Child Care"],
        [
            "Licensed child care and preschool for ages 6 weeks to 5 years",
            "daycare/preschool, infant room, waitlist for toddlers",
        ],
        ["working parents"],
        ["pediatric dentist and family service referrals", "employer child-care partnerships"],
        (8, 30),
    ),
)

SURNAMES = (
    "Anderson", "Olson", "Johnson", "Nguyen", "Larson", "Garcia", "Peterson", "Hernandez", "Lindqvist",
    "Okafor", "Schmidt", "Vang", "Kowalski", "Martinez", "Berg", "Thompson", "Yang", "Novak", "Haugen",
    "Rivera", "Sullivan", "Dahl", "Morales", "Chen", "Nelson", "Ramirez", "Hughes", "Lee", "Bauer", "Ortiz",
)  # fmt: skip
FIRST_NAMES = (
    "Maria", "Jake", "Priya", "Tom", "Anna", "Luis", "Karen", "Mai", "Ben", "Grace", "Omar", "Nora",
    "Erik", "Sofia", "Dave", "Leah", "Sam", "Hannah", "Carlos", "Ingrid",
)  # fmt: skip


@dataclass(frozen=True)
class City:
    name: str
    region: str
    metro: str
    lat: float
    lon: float
    neighbourhoods: tuple[str, ...]


CITIES = (
    City("Minneapolis", "MN", "Twin Cities", 44.9778, -93.2650,
         ("Lakeside", "North Loop", "Nokomis", "Mill City", "Minnehaha", "Uptown", "Longfellow")),
    City("Saint Paul", "MN", "Twin Cities", 44.9537, -93.0900,
         ("Summit", "Grand Avenue", "Highland", "Como", "Lowertown", "Cathedral Hill", "Mississippi")),
    City("Austin", "TX", "Austin", 30.2672, -97.7431,
         ("Barton Creek", "South Congress", "Zilker", "Hyde Park", "Riverside", "Bluebonnet", "Travis Heights")),
)  # fmt: skip

SALESPEOPLE = (
    ("dana.whitfield@netweave-demo.com", "Dana Whitfield"),
    ("marcus.lee@netweave-demo.com", "Marcus Lee"),
    ("sofia.ramirez@netweave-demo.com", "Sofia Ramirez"),
    ("ken.okafor@netweave-demo.com", "Ken Okafor"),
    ("ava.lindqvist@netweave-demo.com", "Ava Lindqvist"),
)

# The CRM's vaguer labels: real exports are full of them.
VAGUE_CATEGORIES = ("Services", "Retail", "Other", "Local Business", "Small Business")

# Kinds that often already work together, for seeding existing partnerships.
PARTNER_KINDS = (
    ("Wedding Venue", "Florist"), ("Wedding Venue", "Caterer"), ("Wedding Planner", "Wedding Photographer"),
    ("Real Estate Agent", "Mortgage Broker"), ("Real Estate Agent", "Home Inspector"),
    ("General Contractor", "Electrician"), ("General Contractor", "Plumber"), ("Accounting Firm", "Business Law Firm"),
    ("Chiropractor", "Massage Therapy"), ("Fitness Gym", "Nutritionist"), ("Car Dealership", "Insurance Agency"),
    ("Veterinary Clinic", "Dog Groomer"), ("Coffee Shop", "Bakery"), ("Marketing Agency", "Web Design Studio"),
)  # fmt: skip
